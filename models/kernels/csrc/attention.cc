// Softmax attention on the CPU, forward and backward, one (example, head) at a time in cache.
//
// XLA:CPU runs attention with small heads (LEGO's head_dim 16 at T 62) as a few dozen separate
// batched ops per layer, each a pass over [B, H, T, T] scores in memory, and its batched matmuls
// with a transposed operand at ~10 GFLOP/s. Here each (example, head) pair computes its scores,
// softmax and products in scratch that stays in L1/L2, reading q, k, v straight from the
// projection's [B, T, H, D] layout (no head-major transposes). Pairs are independent, so splitting
// them over threads keeps the result bit-for-bit the same. models/ops.py decides where it runs
// (where it measures faster than XLA's path); models/kernels/cpu.py builds it.
//
// Semantics match models/kernels/xla.py `softmax_attention` with models/masking.py
// `masked_softmax`: logits = (q . k) * scale (+ bias), masked-out keys set to -1e30 (a fully
// masked row is uniform), softmax over keys. The forward also returns the softmax weights, which
// the backward reads. A second target, mix, multiplies fixed weights by values (LEGO's fixed
// heads); its backward is a mix by the transposed weights (models/kernels/cpu.py).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "common.h"

namespace {

using namespace synthstudies;

constexpr float kMaskedLogit = -1e30f;  // models.masking.MASKED_LOGIT (tested equal)

// Rows over the keys (the weights, and the mask and bias a caller passes) are padded to a multiple
// of 16: whole wide vectors on every CPU. models/kernels/cpu.py asks synthstudies_row_pad().
constexpr int64_t kRowPad = 16;

// Shapes and strides of one call. q [B, Tq, H, D], k and v [B, Tk, H, D], or packed: one
// self-attention projection [B, T, 3, H, D] holding q, k and v, whose split XLA would copy (a pass
// over each, 4% of a d_model 256 step); mask [Bm, Tq, Tk'] (Bm 1 or B) or none; bias
// [Bb, Hb, Tq, Tk'] (each 1 or full) or none, with Tk' = keys(). D is a multiple of 8. The
// gradients of q, k and v take their layout; out and its gradient are [B, Tq, H, D].
//
// With a mask come its rows' extents [Bm, Tq]: 1 + the last key a query may see (Tk where it sees
// none, whose weights are uniform). Keys past a row's extent have weight exactly 0, so a block of
// rows computes only up to its largest extent (its `live` keys): under a causal mask about half
// the products, as a flash attention skips them.
struct Problem {
  int64_t batch, q_len, k_len, heads, dim;
  int64_t in_stride = 0;  // between rows of q, k, v and their gradients: H * D, or 3 H D packed
  const bool* mask = nullptr;
  int64_t mask_batch_stride = 0;
  const int32_t* extents = nullptr;
  int64_t extents_batch_stride = 0;
  const float* bias = nullptr;
  int64_t bias_batch_stride = 0, bias_head_stride = 0;
  float scale = 1.f;  // 1 / sqrt(dim) for attention; unused by mix

  int64_t keys() const { return round_up(k_len, kRowPad); }
  int64_t row_stride() const { return heads * dim; }  // between rows of out and its gradient
  int64_t q_offset(int64_t b, int64_t h) const { return b * q_len * heads * dim + h * dim; }
  int64_t k_offset(int64_t b, int64_t h) const { return b * k_len * heads * dim + h * dim; }
  int64_t q_in(int64_t b, int64_t h) const { return b * q_len * in_stride + h * dim; }
  int64_t k_in(int64_t b, int64_t h) const { return b * k_len * in_stride + h * dim; }
  const int32_t* row_extents(int64_t b) const {
    return extents ? extents + b * extents_batch_stride : nullptr;
  }
  // The keys rows [i, i + R) of example b compute: their largest extent, in whole wide vectors.
  int64_t live(const int32_t* ends, int64_t i, int R) const {
    if (!ends) return keys();
    int64_t last = 0;
    for (int r = 0; r < R; ++r) last = std::max<int64_t>(last, ends[i + r]);
    return std::min(round_up(last, kWide), keys());
  }
};

// Per-thread scratch for one pair: the weights' gradient [Tq, keys], and k or v transposed.
struct Scratch {
  std::vector<float> d_logits, x_t;
  explicit Scratch(const Problem& p) : d_logits(p.q_len * p.keys()), x_t(p.dim * p.keys()) {}
};

// An 8 x 8 block transposed in registers: pairs of rows interleaved, then pairs of pairs, then
// halves, 24 shuffles (copied element by element, the compiler inserted lane by lane).
void transpose8(v8 (&x)[8]) {
  v8 t[8], s[8];
  for (int r = 0; r < 8; r += 2) {
    t[r] = __builtin_shufflevector(x[r], x[r + 1], 0, 8, 1, 9, 4, 12, 5, 13);
    t[r + 1] = __builtin_shufflevector(x[r], x[r + 1], 2, 10, 3, 11, 6, 14, 7, 15);
  }
  for (int r = 0; r < 8; r += 4)
    for (int h = 0; h < 2; ++h) {  // s[r + h], s[r + 2 + h]: columns h and 2 + h of the quad
      s[r + h] = __builtin_shufflevector(t[r + h], t[r + 2 + h], 0, 1, 8, 9, 4, 5, 12, 13);
      s[r + 2 + h] = __builtin_shufflevector(t[r + h], t[r + 2 + h], 2, 3, 10, 11, 6, 7, 14, 15);
    }
  for (int u = 0; u < 4; ++u) {  // columns u and u + 4: the low and high halves of both quads'
    const int q = u % 2 * 2 + u / 2;  // s[q]: each quad's s holds columns 0, 2, 1, 3 in that order
    x[u] = __builtin_shufflevector(s[q], s[4 + q], 0, 1, 2, 3, 8, 9, 10, 11);
    x[u + 4] = __builtin_shufflevector(s[q], s[4 + q], 4, 5, 6, 7, 12, 13, 14, 15);
  }
}

// One pair's k_len rows of x (in_stride apart) into x_t [D, keys], zero past k_len, in 8 x 8
// blocks: element by element it takes 7% of a T 256 layer.
void transpose_rows(const float* x, const Problem& p, float* x_t) {
  const int64_t keys = p.keys(), whole = p.k_len / 8 * 8;
  for (int64_t j = 0; j < whole; j += 8)
    for (int64_t c = 0; c < p.dim; c += 8) {
      v8 block[8];
      for (int r = 0; r < 8; ++r) block[r] = load(x + (j + r) * p.in_stride + c);
      transpose8(block);
      for (int u = 0; u < 8; ++u) store(x_t + (c + u) * keys + j, block[u]);
    }
  for (int64_t c = 0; c < p.dim; ++c) {
    for (int64_t j = whole; j < p.k_len; ++j) x_t[c * keys + j] = x[j * p.in_stride + c];
    std::fill(x_t + c * keys + p.k_len, x_t + (c + 1) * keys, 0.f);
  }
}

// rows[r][j] = sum_c a[r][c] * b_t[c][j] for R rows of a (`a_stride` apart) and the first n
// padded keys j (a multiple of kWide; rows `keys` apart). Keys go G = 8 / R wide vectors at a
// time, so each vector of b_t is loaded once for R rows and eight chains of multiply-adds are in
// flight.
template <int R>
void rows_times_transposed(const float* a, int64_t a_stride, const float* b_t, const Problem& p,
                           int64_t n, float* rows) {
  constexpr int G = 8 / R;
  const int64_t keys = p.keys(), dim = p.dim;
  auto block = [&]<int V>(int64_t j) {  // V of the G vectors of keys from j
    vw acc[R][V] = {};
    for (int64_t c = 0; c < dim; ++c) {
      vw bc[V];
      for (int u = 0; u < V; ++u) bc[u] = shared_load<vw>(b_t + c * keys + j + u * kWide);
      for (int r = 0; r < R; ++r)
        for (int u = 0; u < V; ++u) acc[r][u] += a[r * a_stride + c] * bc[u];
    }
    for (int r = 0; r < R; ++r)
      for (int u = 0; u < V; ++u) store(rows + r * keys + j + u * kWide, acc[r][u]);
  };
  int64_t j = 0;
  for (; j + G * kWide <= n; j += G * kWide) block.template operator()<G>(j);
  for (; j < n; j += kWide) block.template operator()<1>(j);
}

// The weights of weighted_rows: element [r][j] at at[r * row + j * column]. Row-major weights
// have column 1; the transposed weights of the key gradients (sum over queries) have row 1.
struct Weights {
  const float* at;
  int64_t row, column;
};

// out[r][0:D] = scale * sum_j w[r][j] * v[j][0:D] for R rows of w and `count` rows of v (`stride`
// apart), D = 8 * DB: each vector of v loaded once for R rows, the D columns taken 8 / R vectors at
// a time so that the accumulators stay in registers; wide vectors where D fills them.
template <int R, int DB>
void weighted_rows(Weights w, const float* v, int64_t count, int64_t stride, float* out,
                   int64_t out_stride, float scale = 1.f) {
  constexpr int W = DB * kLanes % kWide == 0 ? kWide : kLanes;
  typedef typename Lanes<W>::f V;
  constexpr int NB = DB * kLanes / W, CB = std::min(NB, 8 / R);
  for (int cb0 = 0; cb0 < NB; cb0 += CB) {
    V acc[R][CB] = {};
    for (int64_t j = 0; j < count; ++j)
      for (int cb = 0; cb < CB && cb0 + cb < NB; ++cb) {
        const V vj = shared_load<V>(v + j * stride + (cb0 + cb) * W);
        for (int r = 0; r < R; ++r) acc[r][cb] += w.at[r * w.row + j * w.column] * vj;
      }
    for (int r = 0; r < R; ++r)
      for (int cb = 0; cb < CB && cb0 + cb < NB; ++cb)
        store(out + r * out_stride + (cb0 + cb) * W, acc[r][cb] * scale);
  }
}

// Rows handled together: each pass over k^T or v then serves eight query rows (a row at a time
// re-read them from L2 for every query: half the time of a head_dim 64, T 186 layer; eight rather
// than four: 0.90 of a head_dim 64 layer's time), and each pass over q or d_out eight key rows of
// the key gradients.
constexpr int kRows = 8;

// Calls block.template operator()<R>(i) over `count` rows in blocks of kRows, then of kRows / 2,
// the last rows one at a time.
template <typename Block>
void for_row_blocks(int64_t count, Block block) {
  int64_t i = 0;
  for (; i + kRows <= count; i += kRows) block.template operator()<kRows>(i);
  for (; i + kRows / 2 <= count; i += kRows / 2) block.template operator()<kRows / 2>(i);
  for (; i < count; ++i) block.template operator()<1>(i);
}

// out[j][0:D] = scale * sum_i m[i][j] * a[i][0:D] for the keys j < k_len: the key gradients a^T m,
// written in k's layout (`in_stride` apart). Rows m[i] are 0 from extents[i] on, so a block of
// keys starts at the first query row that sees any of them (under a causal mask, its own).
template <int DB>
void key_gradients(const float* m, const float* a, int64_t a_stride, const Problem& p,
                   const int32_t* extents, float scale, float* out) {
  const int64_t keys = p.keys();
  int64_t first = 0;
  for_row_blocks(p.k_len, [&]<int R>(int64_t j) {
    while (extents && first < p.q_len && extents[first] <= j) ++first;
    weighted_rows<R, DB>({m + first * keys + j, 1, keys}, a + first * a_stride, p.q_len - first,
                         a_stride, out + j * p.in_stride, p.in_stride, scale);
  });
}

// Scales row i of pair (b, h)'s q k^T into its logits, adds the bias and masks, all in wide
// vectors; padded keys get -inf (weight 0). Scalar stores here stalled the softmax's vector loads
// of the same bytes (store forwarding): 40% of a 64-key softmax.
void finish_logits(const Problem& p, int64_t b, int64_t h, int64_t i, int64_t n, float* row) {
  typedef Lanes<kWide>::i vi;
  typedef char vb __attribute__((vector_size(kWide)));  // kWide bools
  typedef int16_t vh __attribute__((vector_size(2 * kWide)));
  vi lane = {};
  for (int l = 0; l < kWide; ++l) lane[l] = l;
  const int64_t keys = p.keys();
  const float* bias =
      p.bias ? p.bias + b * p.bias_batch_stride + h * p.bias_head_stride + i * keys : nullptr;
  const bool* mask = p.mask ? p.mask + b * p.mask_batch_stride + i * keys : nullptr;
  const int32_t k_len = static_cast<int32_t>(p.k_len);
  for (int32_t j = 0; j < n; j += kWide) {
    vw x = load<vw>(row + j) * p.scale;
    if (bias) x += load<vw>(bias + j);
    if (mask) {
      vb m;
      std::memcpy(&m, mask + j, sizeof m);
      // Widened through 16 bits: GCC 12 turns bytes straight to 32 bits into ~70 scalar
      // instructions a vector (a causal row's mask then cost 0.6 of its softmax), this into 12.
      const vi visible = __builtin_convertvector(__builtin_convertvector(m, vh), vi);
      x = visible != 0 ? x : vw{} + kMaskedLogit;
    }
    store(row + j, lane + j < k_len ? x : vw{} - INFINITY);
  }
}

// The softmax weights of a logits row's first n keys, in place, and 0 for the rest. Padded keys
// get weight 0: a fully masked row (n = keys) stays uniform over the k_len real keys.
void softmax_row(const Problem& p, int64_t n, float* row) {
  vw max_lanes = load<vw>(row);
  for (int64_t j = kWide; j < n; j += kWide) {
    const vw x = load<vw>(row + j);
    max_lanes = x > max_lanes ? x : max_lanes;
  }
  const float max = lane_max(max_lanes);
  vw sum_lanes = {};
  for (int64_t j = 0; j < n; j += kWide) {
    const vw e = vexp(load<vw>(row + j) - max);
    store(row + j, e);
    sum_lanes += e;
  }
  const float inv = 1.f / lane_sum(sum_lanes);
  for (int64_t j = 0; j < n; j += kWide) store(row + j, load<vw>(row + j) * inv);
  std::fill(row + n, row + p.keys(), 0.f);
}

// Pair `pair`'s softmax weights go to weights [B, H, Tq, keys()], which the backward reads.
template <int DB>
void forward_pair(const Problem& p, const float* q, const float* k, const float* v, float* out,
                  float* weights, int64_t pair, Scratch& s) {
  const int64_t b = pair / p.heads, h = pair % p.heads, rs = p.row_stride(), keys = p.keys();
  const int64_t qo = p.q_offset(b, h), qi = p.q_in(b, h), ki = p.k_in(b, h), is = p.in_stride;
  const int32_t* extents = p.row_extents(b);
  float* pair_weights = weights + pair * p.q_len * keys;
  transpose_rows(k + ki, p, s.x_t.data());
  for_row_blocks(p.q_len, [&]<int R>(int64_t i) {
    const int64_t n = p.live(extents, i, R);
    float* rows = pair_weights + i * keys;
    rows_times_transposed<R>(q + qi + i * is, is, s.x_t.data(), p, n, rows);
    for (int r = 0; r < R; ++r) {
      finish_logits(p, b, h, i + r, n, rows + r * keys);
      softmax_row(p, n, rows + r * keys);
    }
    weighted_rows<R, DB>({rows, keys, 1}, v + ki, std::min(n, p.k_len), is, out + qo + i * rs, rs);
  });
}

// From the forward's weights w: d_logits = w * (d_w - row term), whose row term d_out_i . out_i
// is the softmax's (as flash attention computes it). Keeping w costs the memory XLA's path keeps
// too; recomputing it from row statistics costs a quarter of this function's time.
template <int DB>
void backward_pair(const Problem& p, const float* q, const float* k, const float* v,
                   const float* out, const float* weights, const float* d_out, float* d_q,
                   float* d_k, float* d_v, float* d_bias, int64_t pair, Scratch& s) {
  const int64_t b = pair / p.heads, h = pair % p.heads, rs = p.row_stride(), keys = p.keys();
  const int64_t qo = p.q_offset(b, h), qi = p.q_in(b, h), ki = p.k_in(b, h), is = p.in_stride;
  const int32_t* extents = p.row_extents(b);
  const float* pair_weights = weights + pair * p.q_len * keys;
  transpose_rows(v + ki, p, s.x_t.data());
  for_row_blocks(p.q_len, [&]<int R>(int64_t i) {
    const int64_t n = p.live(extents, i, R);
    const float* w = pair_weights + i * keys;
    float* g = s.d_logits.data() + i * keys;
    rows_times_transposed<R>(d_out + qo + i * rs, rs, s.x_t.data(), p, n, g);  // d_weights
    for (int r = 0; r < R; ++r) {
      const float* wr = w + r * keys;
      float* gr = g + r * keys;
      const float *dor = d_out + qo + (i + r) * rs, *outr = out + qo + (i + r) * rs;
      v8 term8 = {};
      for (int cb = 0; cb < DB; ++cb) term8 += load(dor + cb * kLanes) * load(outr + cb * kLanes);
      const float term = lane_sum(term8);
      for (int64_t j = 0; j < n; j += kWide)
        store(gr + j, load<vw>(wr + j) * (load<vw>(gr + j) - term));
      std::fill(gr + n, gr + keys, 0.f);
      if (d_bias) std::copy(gr, gr + p.k_len, d_bias + (pair * p.q_len + i + r) * p.k_len);
    }
    weighted_rows<R, DB>({g, keys, 1}, k + ki, std::min(n, p.k_len), is, d_q + qi + i * is, is,
                         p.scale);
  });
  // d_k = scale * d_logits^T q, d_v = weights^T d_out
  key_gradients<DB>(s.d_logits.data(), q + qi, is, p, extents, p.scale, d_k + ki);
  key_gradients<DB>(pair_weights, d_out + qo, rs, p, extents, 1.f, d_v + ki);
}

// Calls f.template operator()<DB>() with DB = D / 8 as a compile-time constant (D in 8..64).
template <typename F>
ffi::Error with_blocks(int64_t dim, F f) {
  switch (dim) {
    case 8: f.template operator()<1>(); break;
    case 16: f.template operator()<2>(); break;
    case 24: f.template operator()<3>(); break;
    case 32: f.template operator()<4>(); break;
    case 40: f.template operator()<5>(); break;
    case 48: f.template operator()<6>(); break;
    case 56: f.template operator()<7>(); break;
    case 64: f.template operator()<8>(); break;
    default:
      return ffi::Error::InvalidArgument("attention kernel: head_dim must be 8, 16, ..., 64");
  }
  return ffi::Error::Success();
}

// Runs work(pair, scratch) for every (example, head) pair, in parallel.
template <typename Work>
void for_each_pair(ffi::ThreadPool& pool, const Problem& p, Work work) {
  for_each_task(pool, p.batch * p.heads, [&p] { return Scratch(p); }, work);
}

// The call's shapes; mask, extents and bias are null when absent (the FFI still passes
// placeholders, as it does for k and v when q is packed).
ffi::Error make_problem(ffi::Buffer<ffi::F32> q, ffi::Buffer<ffi::F32> k,
                        const ffi::Buffer<ffi::PRED>* mask, const ffi::Buffer<ffi::S32>* extents,
                        const ffi::Buffer<ffi::F32>* bias, bool packed, Problem* p) {
  auto qd = q.dimensions(), kd = k.dimensions();
  if (packed) {
    if (qd.size() != 5 || qd[2] != 3)
      return ffi::Error::InvalidArgument("attention: packed q, k, v must be [B, T, 3, H, D]");
    *p = Problem{qd[0], qd[1], qd[1], qd[3], qd[4]};
    p->in_stride = 3 * p->heads * p->dim;
  } else {
    if (qd.size() != 4 || kd.size() != 4)
      return ffi::Error::InvalidArgument("attention: q and k must be [B, T, H, D]");
    *p = Problem{qd[0], qd[1], kd[1], qd[2], qd[3]};
    p->in_stride = p->heads * p->dim;
  }
  p->scale = 1.f / std::sqrt(static_cast<float>(p->dim));
  if (mask) {
    auto md = mask->dimensions();  // [Bm, Tq, keys]
    if (md.back() != p->keys())
      return ffi::Error::InvalidArgument("attention: mask rows must be padded to 16 keys");
    p->mask = mask->typed_data();
    p->mask_batch_stride = md[0] == 1 ? 0 : p->q_len * p->keys();
  }
  if (extents) {
    auto ed = extents->dimensions();  // [Bm, Tq]
    if (ed.size() != 2 || ed[1] != p->q_len || (ed[0] != 1 && ed[0] != p->batch))
      return ffi::Error::InvalidArgument("attention: extents must be [1 or B, Tq]");
    p->extents = extents->typed_data();
    p->extents_batch_stride = ed[0] == 1 ? 0 : p->q_len;
  }
  if (bias) {
    auto bd = bias->dimensions();  // [Bb, Hb, Tq, keys]
    if (bd.back() != p->keys())
      return ffi::Error::InvalidArgument("attention: bias rows must be padded to 16 keys");
    p->bias = bias->typed_data();
    p->bias_head_stride = bd[1] == 1 ? 0 : p->q_len * p->keys();
    p->bias_batch_stride = bd[0] == 1 ? 0 : bd[1] * p->q_len * p->keys();
  }
  return ffi::Error::Success();
}

// That weights is [B, H, Tq, keys()]: the softmax weights the forward writes and the backward
// reads.
ffi::Error check_weights(const Problem& p, ffi::Span<const int64_t> wd) {
  if (wd.size() == 4 && wd[0] == p.batch && wd[1] == p.heads && wd[2] == p.q_len &&
      wd[3] == p.keys())
    return ffi::Error::Success();
  return ffi::Error::InvalidArgument("attention: weights must be [B, H, Tq, keys padded to 16]");
}

// q, k and v (or their gradients): three arrays, or (packed) three offsets into the first.
template <typename T>
std::array<T*, 3> unpack(const Problem& p, bool packed, T* q, T* k, T* v) {
  const int64_t width = p.heads * p.dim;
  return packed ? std::array<T*, 3>{q, q + width, q + 2 * width} : std::array<T*, 3>{q, k, v};
}

ffi::Error forward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> q, ffi::Buffer<ffi::F32> k,
                   ffi::Buffer<ffi::F32> v, ffi::Buffer<ffi::PRED> mask,
                   ffi::Buffer<ffi::S32> extents, ffi::Buffer<ffi::F32> bias,
                   ffi::ResultBuffer<ffi::F32> out, ffi::ResultBuffer<ffi::F32> weights,
                   bool has_mask, bool has_bias, bool packed) {
  Problem p;
  if (auto e = make_problem(q, k, has_mask ? &mask : nullptr, has_mask ? &extents : nullptr,
                            has_bias ? &bias : nullptr, packed, &p);
      e.failure())
    return e;
  if (auto e = check_weights(p, weights->dimensions()); e.failure()) return e;
  const auto [qd, kd, vd] = unpack(p, packed, q.typed_data(), k.typed_data(), v.typed_data());
  float *od = out->typed_data(), *wd = weights->typed_data();
  return with_blocks(p.dim, [&]<int DB>() {
    for_each_pair(pool, p, [&](int64_t pair, Scratch& s) {
      forward_pair<DB>(p, qd, kd, vd, od, wd, pair, s);
    });
  });
}

ffi::Error backward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> q, ffi::Buffer<ffi::F32> k,
                    ffi::Buffer<ffi::F32> v, ffi::Buffer<ffi::F32> out,
                    ffi::Buffer<ffi::F32> weights, ffi::Buffer<ffi::F32> d_out,
                    ffi::Buffer<ffi::S32> extents, ffi::ResultBuffer<ffi::F32> d_q,
                    ffi::ResultBuffer<ffi::F32> d_k, ffi::ResultBuffer<ffi::F32> d_v,
                    ffi::ResultBuffer<ffi::F32> d_logits, bool has_mask, bool has_bias,
                    bool packed) {
  Problem p;
  if (auto e = make_problem(q, k, nullptr, has_mask ? &extents : nullptr, nullptr, packed, &p);
      e.failure())
    return e;
  if (auto e = check_weights(p, weights.dimensions()); e.failure()) return e;
  if (packed && d_q->element_count() != q.element_count())
    return ffi::Error::InvalidArgument("attention: packed gradients must be [B, T, 3, H, D]");
  const auto [qd, kd, vd] = unpack(p, packed, q.typed_data(), k.typed_data(), v.typed_data());
  const float *od = out.typed_data(), *wd = weights.typed_data(), *gd = d_out.typed_data();
  const auto [dq, dk, dv] =
      unpack(p, packed, d_q->typed_data(), d_k->typed_data(), d_v->typed_data());
  float* db = has_bias ? d_logits->typed_data() : nullptr;
  return with_blocks(p.dim, [&]<int DB>() {
    for_each_pair(pool, p, [&](int64_t pair, Scratch& s) {
      backward_pair<DB>(p, qd, kd, vd, od, wd, gd, dq, dk, dv, db, pair, s);
    });
  });
}

// Fixed weights times values (LEGO's fixed heads): out[b, i, h] = sum_j w[b, h, i, j] v[b, j, h];
// the weights [Bw, H, Tq, Tk] (Bw 1 or B) take no gradient. They ride in the bias fields.
ffi::Error make_mix_problem(ffi::Buffer<ffi::F32> weights, ffi::Span<const int64_t> vd,
                            Problem* p) {
  auto wd = weights.dimensions();
  if (wd.size() != 4 || vd.size() != 4 || wd[1] != vd[2] || wd[3] != vd[1])
    return ffi::Error::InvalidArgument("mix: weights [Bw, H, Tq, Tk] and v [B, Tk, H, D]");
  *p = Problem{vd[0], wd[2], vd[1], vd[2], vd[3]};
  p->in_stride = p->heads * p->dim;
  p->bias = weights.typed_data();
  p->bias_head_stride = p->q_len * p->k_len;
  p->bias_batch_stride = wd[0] == 1 ? 0 : p->heads * p->q_len * p->k_len;
  return ffi::Error::Success();
}

const float* weights_of(const Problem& p, int64_t pair) {
  return p.bias + pair / p.heads * p.bias_batch_stride + pair % p.heads * p.bias_head_stride;
}

ffi::Error mix_forward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> weights, ffi::Buffer<ffi::F32> v,
                       ffi::ResultBuffer<ffi::F32> out) {
  Problem p;
  if (auto e = make_mix_problem(weights, v.dimensions(), &p); e.failure()) return e;
  const float* vd = v.typed_data();
  float* od = out->typed_data();
  return with_blocks(p.dim, [&]<int DB>() {
    for_each_pair(pool, p, [&](int64_t pair, Scratch&) {
      const int64_t b = pair / p.heads, h = pair % p.heads, rs = p.row_stride();
      const float* w = weights_of(p, pair);
      for_row_blocks(p.q_len, [&]<int R>(int64_t i) {
        weighted_rows<R, DB>({w + i * p.k_len, p.k_len, 1}, vd + p.k_offset(b, h), p.k_len, rs,
                             od + p.q_offset(b, h) + i * rs, rs);
      });
    });
  });
}

using F32 = ffi::Buffer<ffi::F32>;

}  // namespace

extern "C" int64_t synthstudies_row_pad() { return kRowPad; }

XLA_FFI_DEFINE_HANDLER_SYMBOL(AttentionForward, forward,
                              ffi::Ffi::Bind()  // q, k, v, mask, extents, bias; out, weights
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<F32>().Arg<F32>().Arg<F32>().Arg<ffi::Buffer<ffi::PRED>>()
                                  .Arg<ffi::Buffer<ffi::S32>>().Arg<F32>()
                                  .Ret<F32>().Ret<F32>()
                                  .Attr<bool>("has_mask").Attr<bool>("has_bias")
                                  .Attr<bool>("packed"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(AttentionBackward, backward,
                              ffi::Ffi::Bind()  // q, k, v, out, weights, d_out, extents
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<F32>().Arg<F32>().Arg<F32>().Arg<F32>().Arg<F32>().Arg<F32>()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Ret<F32>().Ret<F32>().Ret<F32>().Ret<F32>()  // d_q, d_k, d_v,
                                  .Attr<bool>("has_mask").Attr<bool>("has_bias")  // d_logits
                                  .Attr<bool>("packed"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(MixForward, mix_forward,
                              ffi::Ffi::Bind()  // the fixed weights, one [B, T, H, D] array; out
                                  .Ctx<ffi::ThreadPool>().Arg<F32>().Arg<F32>().Ret<F32>());
