// What the CPU kernels share: vectors of eight floats and a parallel loop on XLA's thread pool.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace synthstudies {

namespace ffi = xla::ffi;

// Eight floats: GCC/Clang vector extensions, lowered to AVX or NEON by the compiler. A scalar in
// an arithmetic expression with a vector is broadcast.
typedef float v8 __attribute__((vector_size(32)));
constexpr int64_t kLanes = 8;

inline v8 load(const float* p) {
  v8 x;
  std::memcpy(&x, p, sizeof x);
  return x;
}
inline void store(float* p, v8 x) { std::memcpy(p, &x, sizeof x); }
inline float lane_sum(v8 x) {
  float sum = 0.f;
  for (int l = 0; l < kLanes; ++l) sum += x[l];
  return sum;
}
inline float lane_max(v8 x) {
  float max = x[0];
  for (int l = 1; l < kLanes; ++l) max = std::max(max, x[l]);
  return max;
}
inline int64_t round_up(int64_t n) { return (n + kLanes - 1) / kLanes * kLanes; }

// exp of eight floats, branch-free: Cody-Waite reduction to r in [-ln2/2, ln2/2], a
// degree-7 Taylor polynomial (relative error < 6e-9), the exponent added in the float's bits.
// Below -87.3 the result is 0, as in float32 (attention's masked keys: -1e30 minus the row's max).
inline v8 exp8(v8 x) {
  const v8 lo = v8{} - 87.3f, hi = v8{} + 88.7f;
  v8 clamped = x < lo ? lo : x;
  clamped = clamped > hi ? hi : clamped;
  const v8 n = (clamped * 1.44269504088896341f + 12582912.f) - 12582912.f;  // round to nearest
  const v8 r = (clamped - n * 0.693145751953125f) - n * 1.42860682030941723212e-6f;
  v8 p = r * (1.f / 5040) + 1.f / 720;
  p = p * r + 1.f / 120;
  p = p * r + 1.f / 24;
  p = p * r + 1.f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.f;
  p = p * r + 1.f;
  typedef int32_t i8 __attribute__((vector_size(32)));
  i8 bits;
  std::memcpy(&bits, &p, sizeof bits);
  bits += __builtin_convertvector(n, i8) << 23;
  v8 result;
  std::memcpy(&result, &bits, sizeof result);
  return x < lo ? v8{} : result;
}

// Runs work(task, scratch) for tasks 0..count-1, each thread with its own scratch = make_scratch():
// the calling thread and up to num_threads - 1 tasks on XLA's pool take tasks from one counter.
// The caller never waits for a pool task that has not started (XLA may run tasks late, or on the
// caller itself), so it cannot deadlock. It waits for the ones that have: `active` counts them,
// and one that starts after every task was claimed stops without touching the call's arguments,
// which may be gone. Which thread runs a task never changes its result.
template <typename MakeScratch, typename Work>
void for_each_task(ffi::ThreadPool& pool, int64_t count, MakeScratch make_scratch, Work work) {
  struct Shared {
    std::atomic<int64_t> next{0}, done{0}, active{0};
  };
  auto shared = std::make_shared<Shared>();
  auto drain = [shared, count, &make_scratch, &work] {
    auto scratch = make_scratch();
    for (int64_t task; (task = shared->next.fetch_add(1)) < count;) {
      work(task, scratch);
      shared->done.fetch_add(1);
    }
  };
  const int64_t helpers = std::min<int64_t>(pool.num_threads(), count) - 1;
  for (int64_t t = 0; t < helpers; ++t) {
    pool.Schedule([shared, count, drain] {
      shared->active.fetch_add(1);
      if (shared->next.load() < count) drain();
      shared->active.fetch_sub(1);
    });
  }
  drain();
  while (shared->done.load() < count || shared->active.load() > 0) {
  }
}

// A [count, width] array's rows (width a multiple of 8) in chunks: the tasks of the row-wise
// kernels. A column sum adds each chunk's rows into that chunk's partial sums, then the partial
// sums in chunk order (`ColumnSums`), so that no result depends on the threads.
struct Rows {
  static constexpr int64_t kChunk = 64;
  int64_t count, width;
  int64_t chunks() const { return (count + kChunk - 1) / kChunk; }
  int64_t begin(int64_t chunk) const { return chunk * kChunk; }
  int64_t end(int64_t chunk) const { return std::min(count, (chunk + 1) * kChunk); }
};

// The rows of a [..., width] buffer, or an error when width is not a multiple of 8.
template <typename Buffer>
ffi::Error rows_of(const Buffer& x, Rows* rows) {
  const int64_t width = x.dimensions().back();
  if (width % kLanes) return ffi::Error::InvalidArgument("row kernels: width must be 8k");
  *rows = Rows{static_cast<int64_t>(x.element_count()) / width, width};
  return ffi::Error::Success();
}

// `sums` column sums of a Rows, accumulated per chunk: add(chunk, s) points at chunk's partial
// sum s; total(s, out) adds them up in chunk order.
class ColumnSums {
 public:
  ColumnSums(const Rows& rows, int sums)
      : width_(rows.width), sums_(sums), chunks_(rows.chunks()),
        partial_(chunks_ * sums * width_, 0.f) {}
  float* at(int64_t chunk, int s) { return partial_.data() + (chunk * sums_ + s) * width_; }
  void total(int s, float* out) {
    std::fill(out, out + width_, 0.f);
    for (int64_t chunk = 0; chunk < chunks_; ++chunk)
      for (int64_t c = 0; c < width_; c += kLanes)
        store(out + c, load(out + c) + load(at(chunk, s) + c));
  }

 private:
  int64_t width_, sums_, chunks_;
  std::vector<float> partial_;
};

struct NoScratch {};
inline NoScratch no_scratch() { return {}; }

}  // namespace synthstudies
