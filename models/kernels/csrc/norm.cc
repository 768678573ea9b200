// LayerNorm and RMSNorm on the CPU, forward and backward, one pass over the rows each way.
//
// XLA:CPU runs the norm of a d_model 64 residual stream as ~10 separate passes a layer (row
// reductions for the mean and the variance forward, three more backward, and column sums for the
// scale and bias gradients, each a YNNPACK reduction at ~9 GB/s): a fifth of the default LEGO
// step. Here a row stays in L1: the forward reads x once and writes y and the row's (mean,
// 1 / std); the backward reads x, dy and those statistics, and writes dx and each chunk's partial
// scale and bias gradients (common.h `ColumnSums`).
//
// Semantics match models/transformer.py `norm`: centred (LayerNorm) y = (x - mean) * rstd * scale
// (+ bias), rstd = 1 / sqrt(mean((x - mean)^2) + 1e-6); RMSNorm the same with mean = 0.
#include <cmath>
#include <cstdint>

#include "common.h"

namespace {

using namespace synthstudies;

constexpr float kEpsilon = 1e-6f;  // models.transformer.NORM_EPSILON (tested equal)

// The mean (0 when not centred) and 1 / std of one row.
void row_stats(const float* x, int64_t width, bool centred, float* mean, float* rstd) {
  v8 sum = {};
  if (centred)
    for (int64_t c = 0; c < width; c += kLanes) sum += load(x + c);
  const float m = centred ? lane_sum(sum) / width : 0.f;
  v8 squares = {};
  for (int64_t c = 0; c < width; c += kLanes) {
    const v8 d = load(x + c) - m;
    squares += d * d;
  }
  *mean = m;
  *rstd = 1.f / std::sqrt(lane_sum(squares) / width + kEpsilon);
}

ffi::Error forward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> scale,
                   ffi::Buffer<ffi::F32> bias, ffi::ResultBuffer<ffi::F32> y,
                   ffi::ResultBuffer<ffi::F32> stats, bool centred, bool has_bias) {
  Rows r;
  if (auto e = rows_of(x, &r); e.failure()) return e;
  const float *xd = x.typed_data(), *sd = scale.typed_data(), *bd = bias.typed_data();
  float *yd = y->typed_data(), *st = stats->typed_data();
  for_each_task(pool, r.chunks(), no_scratch, [&](int64_t chunk, NoScratch&) {
    for (int64_t i = r.begin(chunk); i < r.end(chunk); ++i) {
      const float* xi = xd + i * r.width;
      float* yi = yd + i * r.width;
      float mean, rstd;
      row_stats(xi, r.width, centred, &mean, &rstd);
      for (int64_t c = 0; c < r.width; c += kLanes) {
        const v8 out = (load(xi + c) - mean) * rstd * load(sd + c);
        store(yi + c, has_bias ? out + load(bd + c) : out);
      }
      st[2 * i] = mean;
      st[2 * i + 1] = rstd;
    }
  });
  return ffi::Error::Success();
}

// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * scale, xhat = (x - mean) * rstd
// (without the mean(g) term when not centred); d_scale = sum dy * xhat, d_bias = sum dy.
ffi::Error backward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> scale,
                    ffi::Buffer<ffi::F32> stats, ffi::Buffer<ffi::F32> d_y,
                    ffi::ResultBuffer<ffi::F32> d_x, ffi::ResultBuffer<ffi::F32> d_scale,
                    ffi::ResultBuffer<ffi::F32> d_bias, bool centred) {
  Rows r;
  if (auto e = rows_of(x, &r); e.failure()) return e;
  const float *xd = x.typed_data(), *sd = scale.typed_data(), *st = stats.typed_data();
  const float* gd = d_y.typed_data();
  float* dxd = d_x->typed_data();
  ColumnSums sums(r, 2);  // d_scale, d_bias
  for_each_task(pool, r.chunks(), no_scratch, [&](int64_t chunk, NoScratch&) {
    float *part_scale = sums.at(chunk, 0), *part_bias = sums.at(chunk, 1);
    for (int64_t i = r.begin(chunk); i < r.end(chunk); ++i) {
      const float *xi = xd + i * r.width, *gi = gd + i * r.width;
      const float mean = st[2 * i], rstd = st[2 * i + 1];
      v8 g_sum = {}, gx_sum = {};
      for (int64_t c = 0; c < r.width; c += kLanes) {
        const v8 dy = load(gi + c), xhat = (load(xi + c) - mean) * rstd, g = dy * load(sd + c);
        g_sum += g;
        gx_sum += g * xhat;
        store(part_scale + c, load(part_scale + c) + dy * xhat);
        store(part_bias + c, load(part_bias + c) + dy);
      }
      const float g_mean = centred ? lane_sum(g_sum) / r.width : 0.f;
      const float gx_mean = lane_sum(gx_sum) / r.width;
      float* dxi = dxd + i * r.width;
      for (int64_t c = 0; c < r.width; c += kLanes) {
        const v8 xhat = (load(xi + c) - mean) * rstd, g = load(gi + c) * load(sd + c);
        store(dxi + c, (g - g_mean - xhat * gx_mean) * rstd);
      }
    }
  });
  sums.total(0, d_scale->typed_data());
  sums.total(1, d_bias->typed_data());
  return ffi::Error::Success();
}

using F32 = ffi::Buffer<ffi::F32>;

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(NormForward, forward,
                              ffi::Ffi::Bind().Ctx<ffi::ThreadPool>()
                                  .Arg<F32>().Arg<F32>().Arg<F32>()  // x, scale, bias
                                  .Ret<F32>().Ret<F32>()             // y, row (mean, rstd)
                                  .Attr<bool>("centred").Attr<bool>("has_bias"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(NormBackward, backward,
                              ffi::Ffi::Bind().Ctx<ffi::ThreadPool>()
                                  .Arg<F32>().Arg<F32>()   // x, scale
                                  .Arg<F32>().Arg<F32>()   // row stats, dy
                                  .Ret<F32>().Ret<F32>().Ret<F32>()  // dx, d_scale, d_bias
                                  .Attr<bool>("centred"));
