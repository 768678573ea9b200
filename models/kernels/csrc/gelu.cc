// A bias added, then GPT-2's gelu (tanh form), on the CPU: forward and backward in one pass each.
//
// XLA:CPU runs the MLP's activation as a fused pass forward, but backward as a pass for the
// gelu's derivative plus a YNNPACK column reduction for the bias gradient (~9 GB/s), over the
// [tokens, d_ff] pre-activations. Here the backward reads the pre-activation and the output's
// gradient once and writes the input's gradient and each chunk's partial bias gradient.
//
// Semantics match models/mlp.py `gelu` (jax.nn.gelu's tanh form), u = y + bias:
//   gelu(u) = u * 0.5 * (1 + tanh(z)) = u * sigmoid(2 z),  z = sqrt(2 / pi) * (u + 0.044715 u^3).
// Computed as u / (1 + exp(-2 z)): one exp and one division, and fewer operations than through
// tanh (1 - 2 / (exp(2 z) + 1), then u * 0.5 * (1 + t)).
#include <cstdint>

#include "common.h"

namespace {

using namespace synthstudies;

// models.mlp.GELU_SQRT_2_OVER_PI and GELU_CUBIC (tested equal)
constexpr float kSqrt2OverPi = 0.7978845608028654f, kCubic = 0.044715f;

// 1 + exp(-2 z) of u, with u2 = u * u: vexp saturates at both ends (stays finite), so gelu and
// its slope do too.
template <typename V>
inline V one_plus_exp_minus_2z(V u, V u2) {
  return vexp((-2.f * kSqrt2OverPi) * (u + kCubic * u2 * u)) + 1.f;
}

// Calls f.template operator()<V>() with V the widest vector that divides the rows' width: with
// AVX-512, 16 floats took 0.63-0.78 of the time of 8, forward and backward (the norm's row sums
// and partial column sums measured 1.1-1.36x slower so, and stay at 8).
template <typename F>
void with_vectors(const Rows& r, F f) {
  if (r.width % kWide == 0)
    f.template operator()<vw>();
  else
    f.template operator()<v8>();
}

ffi::Error forward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> y, ffi::Buffer<ffi::F32> bias,
                   ffi::ResultBuffer<ffi::F32> out, bool has_bias) {
  Rows r;
  if (auto e = rows_of(y, &r); e.failure()) return e;
  const float *yd = y.typed_data(), *bd = bias.typed_data();
  float* od = out->typed_data();
  with_vectors(r, [&]<typename V>() {
    for_each_task(pool, r.chunks(), no_scratch, [&](int64_t chunk, NoScratch&) {
      for (int64_t i = r.begin(chunk); i < r.end(chunk); ++i)
        for (int64_t c = 0; c < r.width; c += sizeof(V) / 4) {
          const V u = has_bias ? load<V>(yd + i * r.width + c) + load<V>(bd + c)
                               : load<V>(yd + i * r.width + c);
          store(od + i * r.width + c, u / one_plus_exp_minus_2z(u, u * u));
        }
    });
  });
  return ffi::Error::Success();
}

// d_u = d_out * (s + 2 u s (1 - s) sqrt(2 / pi) (1 + 3 * 0.044715 u^2)), s = sigmoid(2 z), d_y =
// d_u, d_bias = sum of d_u over the rows.
ffi::Error backward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> y, ffi::Buffer<ffi::F32> bias,
                    ffi::Buffer<ffi::F32> d_out, ffi::ResultBuffer<ffi::F32> d_y,
                    ffi::ResultBuffer<ffi::F32> d_bias, bool has_bias) {
  Rows r;
  if (auto e = rows_of(y, &r); e.failure()) return e;
  const float *yd = y.typed_data(), *bd = bias.typed_data(), *gd = d_out.typed_data();
  float* dyd = d_y->typed_data();
  ColumnSums sums(r, 1);
  with_vectors(r, [&]<typename V>() {
    for_each_task(pool, r.chunks(), no_scratch, [&](int64_t chunk, NoScratch&) {
      float* part = sums.at(chunk, 0);
      for (int64_t i = r.begin(chunk); i < r.end(chunk); ++i)
        for (int64_t c = 0; c < r.width; c += sizeof(V) / 4) {
          const int64_t at = i * r.width + c;
          const V u = has_bias ? load<V>(yd + at) + load<V>(bd + c) : load<V>(yd + at);
          const V u2 = u * u, s = 1.f / one_plus_exp_minus_2z(u, u2);
          const V slope = s + u * (s - s * s) * (2.f * kSqrt2OverPi) * (1.f + 3.f * kCubic * u2);
          const V d = load<V>(gd + at) * slope;
          store(dyd + at, d);
          store(part + c, load<V>(part + c) + d);
        }
    });
  });
  sums.total(0, d_bias->typed_data());
  return ffi::Error::Success();
}

using F32 = ffi::Buffer<ffi::F32>;

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(BiasGeluForward, forward,
                              ffi::Ffi::Bind().Ctx<ffi::ThreadPool>()
                                  .Arg<F32>().Arg<F32>()  // y, bias
                                  .Ret<F32>()             // gelu(y + bias)
                                  .Attr<bool>("has_bias"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(BiasGeluBackward, backward,
                              ffi::Ffi::Bind().Ctx<ffi::ThreadPool>()
                                  .Arg<F32>().Arg<F32>().Arg<F32>()  // y, bias, d_out
                                  .Ret<F32>().Ret<F32>()             // d_y, d_bias
                                  .Attr<bool>("has_bias"));
