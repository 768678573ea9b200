// What the CPU kernels share: vectors of 8 or 16 floats, exp, a parallel loop on XLA's threads.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace synthstudies {

namespace ffi = xla::ffi;

// Vectors of N floats: GCC/Clang vector extensions, lowered to AVX, AVX-512 or NEON by the
// compiler. A scalar in an arithmetic expression with a vector is broadcast.
template <int N>
struct Lanes {
  typedef float f __attribute__((vector_size(4 * N)));
  typedef int32_t i __attribute__((vector_size(4 * N)));
};
// Eight floats: the unit of every width the kernels take (row widths, attention's head_dim).
typedef Lanes<8>::f v8;
constexpr int64_t kLanes = 8;
// The widest vectors this CPU has, for axes the kernels pad themselves (attention's keys): 16
// floats with AVX-512 (where XLA's own YNNPACK kernels use them too), else 8.
#ifdef __AVX512F__
constexpr int64_t kWide = 16;
#else
constexpr int64_t kWide = 8;
#endif
typedef Lanes<kWide>::f vw;

template <typename V = v8>
inline V load(const float* p) {
  V x;
  std::memcpy(&x, p, sizeof x);
  return x;
}
template <typename V>
inline void store(float* p, V x) { std::memcpy(p, &x, sizeof x); }
// A load whose vector several multiply-adds share, kept in a register. GCC otherwise folds it into
// each multiply-add's memory operand, loading it again for every row: on Zen 4 (two 256-bit load
// ports) a 4 x 2-vector tile of attention's products then ran at 54 GFLOP/s a core, 102 with this.
template <typename V = v8>
inline V shared_load(const float* p) {
  V x = load<V>(p);
#if defined(__x86_64__)
  asm("" : "+v"(x));
#elif defined(__aarch64__)
  asm("" : "+w"(x));
#endif
  return x;
}
// The lanes of x folded by `op` in halves: log2(N) dependent steps, not N - 1. The halves are
// shuffles, not copies through memory: a copy took the accumulator's address, and GCC then kept a
// softmax row's running max and sum on the stack, a store and a load in every iteration's chain.
template <typename V, typename Op, size_t... Low>
inline float fold_halves(V x, Op op, std::index_sequence<Low...>) {
  constexpr size_t half = sizeof...(Low);
  const auto folded = op(__builtin_shufflevector(x, x, Low...),
                         __builtin_shufflevector(x, x, (Low + half)...));
  if constexpr (half == 1) {
    return folded[0];
  } else {
    return fold_halves(folded, op, std::make_index_sequence<half / 2>());
  }
}
template <typename V, typename Op>
inline float fold_lanes(V x, Op op) {
  return fold_halves(x, op, std::make_index_sequence<sizeof(V) / 8>());
}
template <typename V>
inline float lane_sum(V x) {
  return fold_lanes(x, [](auto a, auto b) { return a + b; });
}
template <typename V>
inline float lane_max(V x) {
  return fold_lanes(x, [](auto a, auto b) { return a > b ? a : b; });
}
inline int64_t round_up(int64_t n, int64_t multiple) {
  return (n + multiple - 1) / multiple * multiple;
}

// exp of a vector, branch-free: Cody-Waite reduction to r in [-ln2/2, ln2/2], a degree-7 Taylor
// polynomial (relative error < 6e-9), the exponent added in the float's bits. Below -87.3 the
// result is 0, as in float32 (attention's masked keys: -1e30 minus the row's max).
template <typename V>
inline V vexp(V x) {
  const V lo = V{} - 87.3f, hi = V{} + 88.7f;
  V clamped = x < lo ? lo : x;
  clamped = clamped > hi ? hi : clamped;
  const V n = (clamped * 1.44269504088896341f + 12582912.f) - 12582912.f;  // round to nearest
  const V r = (clamped - n * 0.693145751953125f) - n * 1.42860682030941723212e-6f;
  V p = r * (1.f / 5040) + 1.f / 720;
  p = p * r + 1.f / 120;
  p = p * r + 1.f / 24;
  p = p * r + 1.f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.f;
  p = p * r + 1.f;
  typedef typename Lanes<sizeof(V) / 4>::i I;
  I bits;
  std::memcpy(&bits, &p, sizeof bits);
  bits += __builtin_convertvector(n, I) << 23;
  V result;
  std::memcpy(&result, &bits, sizeof result);
  return x < lo ? V{} : result;
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
