// Whole-sequence loops for the scratch LSTM, GRU and Elman RNN: one call per
// layer-direction runs every time step, forward and the hand-written backward.
//
// Why: a step of the Python loop (rnnsuite/bptt.py) costs ~15-40 us of interpreter and
// dispatch whatever its size, which at the documents' shapes (B = 16..128, H = 32..256) is
// more than its arithmetic; nn.LSTM's own loop is C++. Here each step is one matrix
// multiply plus one fused pass over the gates, with no tensor made per step (the MKL path).
// The maths of each step is its cell's manual step, to the letter: rnnsuite/cells/lstm.py
// (_ManualStep), gru.py and rnn.py; the parity tests compare this path with those and with
// the built-ins.
//
// Rows: `xp` holds the projected input of every step in time order, step t's rows at
// offset sum(sizes[:t]), `sizes[t]` of them (padded input: every size is B; packed input:
// sorted longest first, so the batch shrinks forward in time). The state lives in full
// (B, H) buffers of which a step updates the first sizes[t] rows: a sequence that has
// ended (forward) or not yet begun (reversed) keeps its row untouched, so the buffers end
// as the final state, and in backward as the initial state's gradient, with no bookkeeping.
//
// Matrix multiplies: oneDNN's brgemm microkernel straight on the buffers (see Matmul).

#include <ATen/Parallel.h>
#include <ATen/native/CPUBlas.h>
#include <torch/extension.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <vector>

#ifdef __AVX2__
#include <immintrin.h>
#endif

extern "C" void sgemm_(const char* transa, const char* transb, const int* m, const int* n,
                       const int* k, const float* alpha, const float* a, const int* lda,
                       const float* b, const int* ldb, const float* beta, float* c, const int* ldc);

namespace {

using torch::Tensor;
using OptTensor = std::optional<Tensor>;

// ALWAYS_INLINE: the row loops vectorise only with these inlined, and the compiler's own
// choice changed with how deep a loop sits in lambdas (measured 7x slower once it stopped)
#define ALWAYS_INLINE inline __attribute__((always_inline))

// e^x to ~1.2 ulp (measured over [-87, 88]): x = n ln2 + r with |r| <= ln2/2 and e^r by
// Cephes' expf polynomial, inline so the row loops vectorise without a libm call; measured
// here a quarter faster than glibc's vector expf in the LSTM step, whose five sigmoids a
// element are most of its pointwise cost.
ALWAYS_INLINE float exp_(float x) {
  x = std::min(std::max(x, -87.3f), 88.3f);
  const float n = std::nearbyint(x * 1.44269504088896341f);
  float r = x - n * 0.693359375f;  // ln2's high part, exact in float
  r = r - n * -2.12194440e-4f;     // and its low part
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.f;
  return p * std::bit_cast<float>((static_cast<int32_t>(n) + 127) << 23);
}

ALWAYS_INLINE float sigmoid(float x) { return 1.f / (1.f + exp_(-x)); }
ALWAYS_INLINE float tanh_(float x) { return 2.f * sigmoid(2.f * x) - 1.f; }  // as gemm.tanh_

int64_t grain(int64_t width) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(width, 1)); }

void check(const Tensor& t, int64_t rows, int64_t cols, const char* name) {
  TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == torch::kFloat32, name,
              " must be a float32 CPU tensor");
  TORCH_CHECK(t.dim() == 2 && t.size(0) == rows && t.size(1) == cols && t.is_contiguous(), name,
              " must be a contiguous (", rows, ", ", cols, ") tensor, got ", t.sizes());
}

std::vector<int64_t> offsets(const std::vector<int64_t>& sizes, int64_t rows, int64_t B) {
  std::vector<int64_t> off(sizes.size() + 1, 0);
  for (size_t t = 0; t < sizes.size(); ++t) {
    TORCH_CHECK(sizes[t] > 0 && sizes[t] <= B, "batch sizes must be in 1..", B);
    off[t + 1] = off[t] + sizes[t];
  }
  TORCH_CHECK(off.back() == rows, "batch sizes sum to ", off.back(), ", not ", rows, " rows");
  return off;
}

#ifdef __AVX2__
// an 8x8 block: d's 8 rows (stride ldd) = the columns of s's 8 rows (stride lds)
ALWAYS_INLINE void transpose8(const float* s, int64_t lds, float* d, int64_t ldd) {
  __m256 r[8], t[8];
  for (int k = 0; k < 8; ++k) r[k] = _mm256_loadu_ps(s + k * lds);
  for (int k = 0; k < 8; k += 2) {
    t[k] = _mm256_unpacklo_ps(r[k], r[k + 1]);
    t[k + 1] = _mm256_unpackhi_ps(r[k], r[k + 1]);
  }
  for (int k = 0; k < 8; k += 4) {
    r[k] = _mm256_shuffle_ps(t[k], t[k + 2], 0x44);
    r[k + 1] = _mm256_shuffle_ps(t[k], t[k + 2], 0xEE);
    r[k + 2] = _mm256_shuffle_ps(t[k + 1], t[k + 3], 0x44);
    r[k + 3] = _mm256_shuffle_ps(t[k + 1], t[k + 3], 0xEE);
  }
  for (int k = 0; k < 4; ++k) {
    _mm256_storeu_ps(d + k * ldd, _mm256_permute2f128_ps(r[k], r[k + 4], 0x20));
    _mm256_storeu_ps(d + (k + 4) * ldd, _mm256_permute2f128_ps(r[k], r[k + 4], 0x31));
  }
}
#endif

// dst[j * ldd + i] = src[i * lds + j] for i < rows, j < cols: a transposing copy in 32x32
// tiles of 8x8 register blocks (AVX2), so a tile's reads and writes stay in L1. Measured
// here (AMD EPYC, AVX-512, one thread): 0.1 ns an element for 800x96 and 0.5 at 4096x512
// (memory-bound), against ~1 ns for torch's copy of a transposed view and the compiler's
// own vectorisation of this loop (gathers); the no-tree-vectorize scalar loop, 0.2-0.3.
// Where dst's rows lie a multiple of 256 floats apart (1 KiB: Human Numbers' 1024 rows of
// gradient, the bars' 4096), a tile's 32 rows fall on a few cache sets and addresses 4 KiB
// apart: 0.47 ns an element for 1024x64 in 32x32 tiles, 0.25 in bands of 8 of dst's rows
// swept 16 columns at a time (full cache lines written), which lose to tiles elsewhere.
__attribute__((optimize("no-tree-vectorize")))
void transpose_into(const float* __restrict src, int64_t rows, int64_t cols, int64_t lds,
                    float* __restrict dst, int64_t ldd) {
#ifdef __AVX2__
  if (ldd % 256 == 0) {
    int64_t j = 0;
    for (; j + 8 <= cols; j += 8) {
      int64_t i = 0;
      for (; i + 16 <= rows; i += 16) {
        transpose8(src + i * lds + j, lds, dst + j * ldd + i, ldd);
        transpose8(src + (i + 8) * lds + j, lds, dst + j * ldd + i + 8, ldd);
      }
      for (; i < rows; ++i)
        for (int64_t jj = j; jj < j + 8; ++jj) dst[jj * ldd + i] = src[i * lds + jj];
    }
    for (; j < cols; ++j)
      for (int64_t i = 0; i < rows; ++i) dst[j * ldd + i] = src[i * lds + j];
    return;
  }
#endif
  constexpr int64_t TB = 32;
  for (int64_t i0 = 0; i0 < rows; i0 += TB) {
    const int64_t i1 = std::min(rows, i0 + TB);
    for (int64_t j0 = 0; j0 < cols; j0 += TB) {
      const int64_t j1 = std::min(cols, j0 + TB);
      int64_t i = i0;
#ifdef __AVX2__
      for (; i + 8 <= i1; i += 8) {
        int64_t j = j0;
        for (; j + 8 <= j1; j += 8) transpose8(src + i * lds + j, lds, dst + j * ldd + i, ldd);
        for (; j < j1; ++j)
          for (int64_t ii = i; ii < i + 8; ++ii) dst[j * ldd + ii] = src[ii * lds + j];
      }
#endif
      for (; i < i1; ++i)
        for (int64_t j = j0; j < j1; ++j) dst[j * ldd + i] = src[i * lds + j];
    }
  }
}

// [a_0^T; a_1^T; ...]: the inputs (N, K_i), float32 CPU matrices with unit column stride,
// transposed and stacked into one contiguous (sum K_i, N); the columns split across torch's
// threads. What a weight's gradient over all steps reads (cells/gemm.py's weight_grads).
Tensor stack_transposed(const std::vector<Tensor>& inputs) {
  TORCH_CHECK(!inputs.empty(), "stack_transposed needs at least one matrix");
  const int64_t N = inputs[0].size(0);
  int64_t K = 0;
  for (const Tensor& a : inputs) {
    TORCH_CHECK(a.dim() == 2 && a.size(0) == N && a.device().is_cpu() &&
                    a.scalar_type() == torch::kFloat32 && (a.size(1) <= 1 || a.stride(1) == 1),
                "stack_transposed: float32 CPU matrices of ", N,
                " rows with contiguous rows, got ", a.sizes());
    K += a.size(1);
  }
  Tensor out = torch::empty({K, N}, inputs[0].options());
  float* dst = out.data_ptr<float>();
  int64_t k0 = 0;
  for (const Tensor& a : inputs) {
    const int64_t k = a.size(1), lds = a.size(0) > 1 ? a.stride(0) : k;
    const float* src = a.data_ptr<float>();
    // row blocks of the input (columns of the result) per thread
    constexpr int64_t kRowBlock = 32;
    const int64_t blocks = (N + kRowBlock - 1) / kRowBlock;
    at::parallel_for(0, blocks, std::max<int64_t>(1, 4096 / std::max<int64_t>(k, 1)),
                     [&](int64_t b0, int64_t b1) {
                       const int64_t i0 = b0 * kRowBlock;
                       const int64_t i1 = std::min(N, b1 * kRowBlock);
                       transpose_into(src + i0 * lds, i1 - i0, k, lds, dst + k0 * N + i0, N);
                     });
    k0 += k;
  }
  return out;
}

// The per-step product on raw buffers: y (b rows, row stride ldy) = x (b rows, stride ldx)
// times B, plus y itself when `add`. B is row-major (in_cols, out_cols): W^T for the
// forward's x W^T (a transposed copy made once a call), W itself for the backward's d W.
// oneDNN's batch-reduce GEMM microkernel (torch's at::native::cpublas::brgemm), on tiles of
// 64 rows by 64 columns split across torch's threads, B copied once a call into one
// contiguous panel per column tile: measured here (AMD EPYC, one thread) 1.7 us a step at
// B=16, H=32, where oneDNN's linear op takes 12 (its per-call cost) and MKL 2.6, and even
// with the op at H = 256. Where the microkernel is not built for this CPU, MKL's sgemm.
// tiles of the per-step product: 64 rows by 64 columns (see Matmul)
constexpr int64_t kTileRows = 64, kTileCols = 64;

struct Matmul {
  Tensor b_operand;  // row-major (in_cols, out_cols): MKL's; for brgemm in column panels
  int64_t in_cols, out_cols;

  Matmul(Tensor b, int64_t in, int64_t out) : in_cols(in), out_cols(out) {
    if (!brgemm_ok()) {
      b_operand = b.contiguous();
      return;
    }
    // panels of NB columns, each contiguous (in_cols, nj): what a tile reads is one block;
    // copied in one pass from b's strides (a torch copy per panel cost ~9 us each, 5% of a
    // PTB-sized forward at 13 panels a layer)
    b_operand = torch::empty({in * out}, b.options());
    float* dst = b_operand.data_ptr<float>();
    const float* src = b.data_ptr<float>();
    const int64_t s0 = b.stride(0), s1 = b.stride(1);
    for (int64_t j0 = 0; j0 < out; j0 += kTileCols) {
      const int64_t nj = std::min(kTileCols, out - j0);
      float* panel = dst + in * j0;
      if (s1 == 1) {
        for (int64_t k = 0; k < in; ++k)
          std::memcpy(panel + k * nj, src + k * s0 + j0, sizeof(float) * nj);
      } else if (s0 == 1) {  // b a transposed view (W^T): W's rows nj..., transposed
        transpose_into(src + j0 * s1, nj, in, s1, panel, nj);
      } else {
        for (int64_t jj = 0; jj < nj; ++jj) {
          const float* col = src + (j0 + jj) * s1;
          for (int64_t k = 0; k < in; ++k) panel[k * nj + jj] = col[k * s0];
        }
      }
    }
  }

  // skip: the product is known to be zero (a first step from a zero state) or not wanted
  // (the initial state's gradient where none is asked for): y is zeroed, or left as it is
  // when `add`, with no arithmetic
  // bias (out_cols values, or null): added to every row of y after the product, tile by
  // tile while the tile is in cache
  void run(const float* x, int64_t ldx, int64_t b, float* y, int64_t ldy, bool add,
           bool skip = false, const float* bias = nullptr) const {
    if (b == 0 || out_cols == 0) return;
    if (in_cols == 0 || skip) {
      if (!add)
        for (int64_t i = 0; i < b; ++i) std::fill(y + i * ldy, y + i * ldy + out_cols, 0.f);
      if (bias) add_bias(y, ldy, 0, b, 0, out_cols, bias);
      return;
    }
    const float* B = b_operand.data_ptr<float>();
    if (brgemm_ok()) {
      const int64_t MB = kTileRows, NB = kTileCols;
      const int64_t mt = (b + MB - 1) / MB, nt = (out_cols + NB - 1) / NB;
      // tiles per thread: at least ~512k multiply-adds each, so a small step stays on one
      // thread (a parallel region costs more than it shares out: measured at B=16, H=32)
      const int64_t tile_macs = std::min(MB, b) * std::min(NB, out_cols) * in_cols;
      const int64_t grain =
          std::max<int64_t>(1, (int64_t{1} << 19) / std::max<int64_t>(tile_macs, 1));
      at::parallel_for(0, mt * nt, grain, [&](int64_t t0, int64_t t1) {
        for (int64_t tile = t0; tile < t1; ++tile) {
          const int64_t i0 = (tile / nt) * MB, j0 = (tile % nt) * NB;
          const int64_t mi = std::min(MB, b - i0), nj = std::min(NB, out_cols - j0);
          at::native::cpublas::brgemm(mi, nj, in_cols, ldx, nj, ldy, add, x + i0 * ldx,
                                      B + in_cols * j0, y + i0 * ldy + j0, false);
          if (bias) add_bias(y, ldy, i0, i0 + mi, j0, j0 + nj, bias);
        }
      });
      return;
    }
    // column-major view: y^T (out_cols, b) = B^T (out_cols, in_cols) x^T (in_cols, b)
    const char ta = 'N', tb = 'N';
    const int m = out_cols, n = b, k = in_cols, lda = out_cols, ldb = ldx, ldc = ldy;
    const float alpha = 1.f, beta = add ? 1.f : 0.f;
    sgemm_(&ta, &tb, &m, &n, &k, &alpha, B, &lda, x, &ldb, &beta, y, &ldc);
    if (bias) add_bias(y, ldy, 0, b, 0, out_cols, bias);
  }

  static void add_bias(float* y, int64_t ldy, int64_t i0, int64_t i1, int64_t j0, int64_t j1,
                       const float* __restrict bias) {
    for (int64_t i = i0; i < i1; ++i) {
      float* __restrict row = y + i * ldy;
#pragma omp simd
      for (int64_t j = j0; j < j1; ++j) row[j] += bias[j];
    }
  }

  // whether torch's brgemm runs on this CPU (tried once; it raises where it is not built)
  static bool brgemm_ok() {
    static const bool ok = [] {
      float a[4] = {1, 2, 3, 4}, b[4] = {1, 0, 0, 1}, c[4] = {0, 0, 0, 0};
      try {
        at::native::cpublas::brgemm(2, 2, 2, 2, 2, 2, false, a, b, c, false);
        at::native::cpublas::brgemm_release(false);
      } catch (const std::exception&) {
        return false;
      }
      return c[0] == 1 && c[1] == 2 && c[2] == 3 && c[3] == 4;
    }();
    return ok;
  }
};

// x W^T for W (G, K): B = W^T
Matmul forward_matmul(const Tensor& w) {
  TORCH_CHECK(w.dim() == 2, "the recurrent weight must be 2-D");
  return Matmul(w.t(), w.size(1), w.size(0));
}

// d W for W (G, K): B = W
Matmul backward_matmul(const Tensor& w) {
  TORCH_CHECK(w.dim() == 2, "the recurrent weight must be 2-D");
  return Matmul(w, w.size(0), w.size(1));
}

// A step's input gates: either rows of a projection made beforehand for every step (xp,
// which the row pass then adds), or made here, a step at a time, from the input's own rows
// (x W_ih^T + the biases) straight into the step's gate buffer while that is in cache, so
// no xp of T·B·G floats is written and read back (training and inference, where the caller
// chose it: rnnsuite/native/sequence.py's FUSE_MAX_WEIGHT_BYTES; measured here 5-26% less
// forward time at the documents' small shapes than the separate projection).
struct StepInput {
  const float* data;  // xp (rows, G) or x (rows, I)
  int64_t ld;         // its row stride
  std::optional<Matmul> mm;  // W_ih^T when data is x
  std::vector<float> bias;   // b1 + b2 when projected here

  StepInput(const Tensor& in, const OptTensor& w_ih, const OptTensor& b1, const OptTensor& b2,
            int64_t rows, int64_t G) {
    if (!w_ih || !w_ih->defined()) {  // xp
      check(in, rows, G, "xp");
      data = in.data_ptr<float>();
      ld = G;
      return;
    }
    const int64_t I = w_ih->size(1);
    check(in, rows, I, "x");
    check(*w_ih, G, I, "weight_ih");
    data = in.data_ptr<float>();
    ld = I;
    mm.emplace(forward_matmul(*w_ih));
    for (const OptTensor* b : {&b1, &b2}) {
      if (!*b || !(*b)->defined()) continue;
      const Tensor& t = **b;
      TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == torch::kFloat32 && t.dim() == 1 &&
                      t.numel() == G && t.is_contiguous(),
                  "a projection bias must be a contiguous float32 CPU vector of ", G, " values");
      const float* q = t.data_ptr<float>();
      if (bias.empty()) bias.assign(q, q + G);
      else
        for (int64_t j = 0; j < G; ++j) bias[j] += q[j];
    }
  }

  // rows lo..e-1 of the step whose rows start at r0 into y (row stride ldy), where this
  // call projects them; the step's recurrent product then adds to them (returns true)
  bool into(float* y, int64_t ldy, int64_t r0, int64_t lo, int64_t e) const {
    if (!mm) return false;
    mm->run(data + (r0 + lo) * ld, ld, e - lo, y, ldy, false, false,
            bias.empty() ? nullptr : bias.data());
    return true;
  }

  // the precomputed gates of a row (null where this call projects them)
  const float* row(int64_t r) const { return mm ? nullptr : data + r * ld; }
};

// The steps in the order a pass visits them (backward in time: last first), each as
// (its rows, the offset of its first row).
std::vector<std::pair<int64_t, int64_t>> steps(const std::vector<int64_t>& sizes,
                                               const std::vector<int64_t>& off,
                                               bool backward_in_time) {
  const int64_t T = sizes.size();
  std::vector<std::pair<int64_t, int64_t>> o(T);
  for (int64_t i = 0; i < T; ++i) {
    const int64_t t = backward_in_time ? T - 1 - i : i;
    o[i] = {sizes[t], off[t]};
  }
  return o;
}

// f(r) for rows lo..hi-1 of a step, split across torch's threads in chunks of grain(width)
// (run inline inside run_steps' own split: torch does not nest parallel regions)
template <class F>
void for_rows(int64_t lo, int64_t hi, int64_t width, const F& f) {
  at::parallel_for(lo, hi, grain(width), [&](int64_t b0, int64_t b1) {
    for (int64_t r = b0; r < b1; ++r) f(r);
  });
}

// the widest step's rows: the batch (sizes are sorted longest first)
int64_t batch_of(const std::vector<int64_t>& sizes) { return sizes.empty() ? 0 : sizes[0]; }

// fewest batch rows a thread is given its own share of (below, the rows stay together and a
// step's product is split by columns instead)
constexpr int64_t kMinChunkRows = 4;

// Row boundaries of one chunk per thread, each about the same number of row-steps (a packed
// batch's first rows are its longest sequences); {0, B} where one thread does it all.
std::vector<int64_t> row_chunks(const std::vector<int64_t>& sizes) {
  const int64_t B = batch_of(sizes);
  const int64_t n = at::in_parallel_region()
                        ? 1
                        : std::min<int64_t>(at::get_num_threads(), B / kMinChunkRows);
  if (n <= 1) return {0, B};
  std::vector<int64_t> steps_of(B, 0);  // row r takes part in the steps with size > r
  for (const int64_t s : sizes) steps_of[s - 1] += 1;
  for (int64_t r = B - 1; r > 0; --r) steps_of[r - 1] += steps_of[r];
  int64_t total = 0;
  for (int64_t r = 0; r < B; ++r) total += steps_of[r];
  std::vector<int64_t> bounds{0};
  int64_t done = 0;
  for (int64_t r = 0; r < B; ++r) {
    done += steps_of[r];
    const auto c = static_cast<int64_t>(bounds.size());
    if (c < n && done * n >= total * c && r + 1 < B) bounds.push_back(r + 1);
  }
  bounds.push_back(B);
  return bounds;
}

// Where a step falls in a pass: its first (from the initial state) or its last
struct Visit {
  bool first, last;
};

// whether every element is zero (the default initial state: its first product is zero)
bool is_zero(const Tensor& t) {
  const float* p = t.data_ptr<float>();
  return std::all_of(p, p + t.numel(), [](float v) { return v == 0.f; });
}

// Runs step(lo, e, r0, visit) for every step of `order` (its rows' offset r0) over the rows lo..e-1
// of it that a thread owns. A row's recurrence reads its own row alone (step t's row r needs
// only row r of step t-1's state, forward and backward), so the batch's rows are dealt to
// torch's threads once a call, each thread running all steps of its rows with no barrier
// between steps: one parallel region a call, where splitting each step costs two a step
// (measured ~2-5 us each on this VM, the whole of a small step). Where the batch is too small
// to deal out, one thread runs the loop and each step's product may split by columns.
template <class Step>
void run_steps(const std::vector<int64_t>& sizes, const std::vector<std::pair<int64_t, int64_t>>& order,
               const Step& step) {
  const int64_t n = order.size();
  auto rows = [&](int64_t lo, int64_t hi) {
    for (int64_t i = 0; i < n; ++i) {
      const auto [b, r0] = order[i];
      const int64_t e = std::min(hi, b);
      if (e > lo) step(lo, e, r0, Visit{i == 0, i == n - 1});
    }
  };
  const auto bounds = row_chunks(sizes);
  const auto chunks = static_cast<int64_t>(bounds.size()) - 1;
  if (chunks <= 1) return rows(0, batch_of(sizes));
  at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) rows(bounds[c], bounds[c + 1]);
  });
}

Tensor carry_of(const OptTensor& g, int64_t B, int64_t H, const Tensor& like) {
  if (!g || !g->defined()) return torch::zeros({B, H}, like.options());
  return g->contiguous().clone();
}

// One row of the forward step (see lstm_forward); KEEP: also what backward needs.
// ADD_X: x holds the row's projected input (else g already has it).
template <bool KEEP, bool ADD_X>
ALWAYS_INLINE void lstm_row(float* __restrict g, const float* __restrict x, float* __restrict cc,
                     float* __restrict hh, float* __restrict out, float* __restrict cp,
                     float* __restrict uu, int64_t H) {
#pragma omp simd
  for (int64_t j = 0; j < H; ++j) {
    const auto in = [&](int64_t k) { return ADD_X ? g[k] + x[k] : g[k]; };
    const float i = sigmoid(in(j)), f = sigmoid(in(H + j));
    const float s = sigmoid(2.f * in(2 * H + j));
    const float o = sigmoid(in(3 * H + j));
    const float c = cc[j];
    const float cv = f * c + i * (2.f * s - 1.f);
    const float uv = sigmoid(-2.f * cv);
    const float hv = o * (1.f - 2.f * uv);
    if constexpr (KEEP) {
      g[j] = i;
      g[H + j] = f;
      g[2 * H + j] = s;
      g[3 * H + j] = o;
      cp[j] = c;
      uu[j] = uv;
    }
    cc[j] = cv;
    hh[j] = hv;
    out[j] = hv;
  }
}

// ---------------------------------------------------------------------------------- LSTM
// Weights in torch's layout (gate rows i, f, g, o; xp carries both biases). With
// s = sigmoid(2g), tanh(g) = 2s - 1, and with u = sigmoid(-2c'), tanh(c') = 1 - 2u:
// c' = f c + i (2s - 1); h' = o (1 - 2u): sigmoids only, as cells/lstm.py's manual step.
// Kept (keep=true): acts (rows, 4H) = i, f, s, o; c_prev (rows, H); u (rows, H).
// The input: xp, every step's projection; or, with w_ih, x itself, projected a step at a
// time here (b1 + b2 its bias; see StepInput).
std::vector<Tensor> lstm_forward(const Tensor& xp, const Tensor& w, const Tensor& h0,
                                 const Tensor& c0, std::vector<int64_t> sizes, bool reverse,
                                 bool keep, const OptTensor& w_ih, const OptTensor& b1,
                                 const OptTensor& b2) {
  const int64_t B = h0.size(0), H = h0.size(1), rows = xp.size(0);
  const StepInput in(xp, w_ih, b1, b2, rows, 4 * H);
  check(w, 4 * H, H, "weight_hh");
  const auto off = offsets(sizes, rows, B);
  auto opts = xp.options();
  Tensor hbuf = h0.contiguous().clone(), cbuf = c0.contiguous().clone();
  const bool zero_start = is_zero(hbuf);
  Tensor out = torch::empty({rows, H}, opts);
  Tensor acts = keep ? torch::empty({rows, 4 * H}, opts) : torch::empty({B, 4 * H}, opts);
  Tensor c_prev = keep ? torch::empty({rows, H}, opts) : Tensor();
  Tensor u = keep ? torch::empty({rows, H}, opts) : Tensor();
  const Matmul mm = forward_matmul(w);
  float *HB = hbuf.data_ptr<float>(), *CB = cbuf.data_ptr<float>();
  float *OUT = out.data_ptr<float>(), *A = acts.data_ptr<float>();
  float* CP = keep ? c_prev.data_ptr<float>() : nullptr;
  float* U = keep ? u.data_ptr<float>() : nullptr;
  run_steps(sizes, steps(sizes, off, reverse), [&](int64_t lo, int64_t e, int64_t r0, Visit v) {
    float* a = keep ? A + r0 * 4 * H : A;
    const bool add = in.into(a + lo * 4 * H, 4 * H, r0, lo, e);
    mm.run(HB + lo * H, H, e - lo, a + lo * 4 * H, 4 * H, add, v.first && zero_start);
    for_rows(lo, e, 4 * H, [&](int64_t r) {
      float* g = a + r * 4 * H;
      const float* x = in.row(r0 + r);
      float *hh = HB + r * H, *cc = CB + r * H, *o_ = OUT + (r0 + r) * H;
      float* cp = keep ? CP + (r0 + r) * H : nullptr;
      float* uu = keep ? U + (r0 + r) * H : nullptr;
      if (keep && x)
        lstm_row<true, true>(g, x, cc, hh, o_, cp, uu, H);
      else if (keep)
        lstm_row<true, false>(g, x, cc, hh, o_, cp, uu, H);
      else if (x)
        lstm_row<false, true>(g, x, cc, hh, o_, cp, uu, H);
      else
        lstm_row<false, false>(g, x, cc, hh, o_, cp, uu, H);
    });
  });
  if (!keep) return {out, hbuf, cbuf};
  return {out, hbuf, cbuf, acts, c_prev, u};
}

// dc = gc + 4 dh o u (1 - u) with dh = carry + the step's output gradient; the gates'
// gradient [dc (2s-1) i', dc c f', 4 dc i s (1-s), dh (1-2u) o'] into grad_xp (x' = x(1-x));
// dc_prev = dc f; dh_prev = grad_gates W (the step's matrix multiply).
std::vector<Tensor> lstm_backward(const Tensor& w, const Tensor& grad_out,
                                  const OptTensor& gh_final, const OptTensor& gc_final,
                                  const Tensor& acts, const Tensor& c_prev, const Tensor& u,
                                  Tensor& grad_xp, std::vector<int64_t> sizes, bool reverse, bool initial_grad) {
  const int64_t rows = acts.size(0), H = w.size(1), B = batch_of(sizes);
  check(acts, rows, 4 * H, "acts");
  check(c_prev, rows, H, "c_prev");
  check(u, rows, H, "u");
  check(grad_out, rows, H, "grad_out");
  check(grad_xp, rows, 4 * H, "grad_xp");
  const auto off = offsets(sizes, rows, B);
  Tensor dh = carry_of(gh_final, B, H, acts), dc = carry_of(gc_final, B, H, acts);
  const Matmul mm = backward_matmul(w);
  const float *A = acts.data_ptr<float>(), *CP = c_prev.data_ptr<float>();
  const float *U = u.data_ptr<float>(), *GO = grad_out.data_ptr<float>();
  float *D = grad_xp.data_ptr<float>(), *DH = dh.data_ptr<float>(), *DC = dc.data_ptr<float>();
  run_steps(sizes, steps(sizes, off, !reverse), [&](int64_t lo, int64_t e, int64_t r0, Visit v) {
    for_rows(lo, e, 4 * H, [&](int64_t r) {
      const float* g = A + (r0 + r) * 4 * H;
      const float *cp = CP + (r0 + r) * H, *uu = U + (r0 + r) * H, *go = GO + (r0 + r) * H;
      float* d = D + (r0 + r) * 4 * H;
      float *dhh = DH + r * H, *dcc = DC + r * H;
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) {
        const float i = g[j], f = g[H + j], s = g[2 * H + j], o = g[3 * H + j];
        const float uv = uu[j], dhv = dhh[j] + go[j];
        const float dcv = dcc[j] + 4.f * dhv * o * uv * (1.f - uv);
        d[j] = dcv * (2.f * s - 1.f) * i * (1.f - i);
        d[H + j] = dcv * cp[j] * f * (1.f - f);
        d[2 * H + j] = 4.f * dcv * i * s * (1.f - s);
        d[3 * H + j] = dhv * (1.f - 2.f * uv) * o * (1.f - o);
        dcc[j] = dcv * f;
      }
    });
    mm.run(D + r0 * 4 * H + lo * 4 * H, 4 * H, e - lo, DH + lo * H, H, false, v.last && !initial_grad);
  });
  return {dh, dc};
}

// One row of the GRU's forward step (see gru_forward); bh is b_hh (zeros without bias).
template <bool KEEP>
ALWAYS_INLINE void gru_row(float* __restrict q, const float* __restrict x, const float* __restrict bh,
                    float* __restrict hh, float* __restrict out, float* __restrict rz,
                    float* __restrict n, float* __restrict diff, int64_t H) {
#pragma omp simd
  for (int64_t j = 0; j < H; ++j) {
    const float qr = q[j] + bh[j], qz = q[H + j] + bh[H + j], qn = q[2 * H + j] + bh[2 * H + j];
    const float rv = sigmoid(x[j] + qr), zv = sigmoid(x[H + j] + qz);
    const float nv = tanh_(x[2 * H + j] + rv * qn);
    const float dv = hh[j] - nv;
    const float hv = nv + zv * dv;
    if constexpr (KEEP) {
      q[j] = qr;
      q[H + j] = qz;
      q[2 * H + j] = qn;
      rz[j] = rv;
      rz[H + j] = zv;
      n[j] = nv;
      diff[j] = dv;
    }
    hh[j] = hv;
    out[j] = hv;
  }
}

// ----------------------------------------------------------------------------------- GRU
// hp = h W_hh^T + b_hh (kept whole); r = sigmoid(x_r + hp_r), z = sigmoid(x_z + hp_z),
// n = tanh(x_n + r hp_n), h' = n + z (h - n). Kept: rz (rows, 2H), n, hp (rows, 3H), diff.
std::vector<Tensor> gru_forward(const Tensor& xp, const Tensor& w, const OptTensor& bias,
                                const Tensor& h0, std::vector<int64_t> sizes, bool reverse,
                                bool keep) {
  const int64_t B = h0.size(0), H = h0.size(1), rows = xp.size(0);
  check(xp, rows, 3 * H, "xp");
  check(w, 3 * H, H, "weight_hh");
  if (bias) check(bias->view({1, -1}), 1, 3 * H, "bias_hh");
  const auto off = offsets(sizes, rows, B);
  auto opts = xp.options();
  Tensor hbuf = h0.contiguous().clone();
  const bool zero_start = is_zero(hbuf);
  Tensor out = torch::empty({rows, H}, opts);
  Tensor hp = torch::empty({keep ? rows : B, 3 * H}, opts);
  Tensor rz = keep ? torch::empty({rows, 2 * H}, opts) : Tensor();
  Tensor n = keep ? torch::empty({rows, H}, opts) : Tensor();
  Tensor diff = keep ? torch::empty({rows, H}, opts) : Tensor();
  const Matmul mm = forward_matmul(w);
  const float* X = xp.data_ptr<float>();
  const Tensor b_hh = bias ? bias->contiguous() : torch::zeros({3 * H}, opts);
  const float* BH = b_hh.data_ptr<float>();
  float *HB = hbuf.data_ptr<float>(), *OUT = out.data_ptr<float>(), *HP = hp.data_ptr<float>();
  float* RZ = keep ? rz.data_ptr<float>() : nullptr;
  float* N = keep ? n.data_ptr<float>() : nullptr;
  float* DF = keep ? diff.data_ptr<float>() : nullptr;
  run_steps(sizes, steps(sizes, off, reverse), [&](int64_t lo, int64_t e, int64_t r0, Visit v) {
    float* p = keep ? HP + r0 * 3 * H : HP;
    mm.run(HB + lo * H, H, e - lo, p + lo * 3 * H, 3 * H, false, v.first && zero_start);
    for_rows(lo, e, 3 * H, [&](int64_t r) {
      const int64_t k = r0 + r;
      float* q = p + r * 3 * H;
      const float* x = X + k * 3 * H;
      if (keep)
        gru_row<true>(q, x, BH, HB + r * H, OUT + k * H, RZ + k * 2 * H, N + k * H, DF + k * H, H);
      else
        gru_row<false>(q, x, BH, HB + r * H, OUT + k * H, nullptr, nullptr, nullptr, H);
    });
  });
  if (!keep) return {out, hbuf};
  return {out, hbuf, rz, n, hp, diff};
}

// dh = carry + output gradient; dn = dh (1 - z)(1 - n^2) -> grad_xp_n; d_r = dn hp_n
// sigma'(r); d_z = dh diff sigma'(z); grad_hp = [d_r, d_z, dn r]; dh_prev = grad_hp W + dh z.
std::vector<Tensor> gru_backward(const Tensor& w, const Tensor& grad_out, const OptTensor& gh_final,
                                 const Tensor& rz, const Tensor& n, const Tensor& hp,
                                 const Tensor& diff, Tensor& grad_xp, Tensor& grad_hp,
                                 std::vector<int64_t> sizes, bool reverse, bool initial_grad) {
  const int64_t rows = rz.size(0), H = w.size(1), B = batch_of(sizes);
  check(rz, rows, 2 * H, "rz");
  check(n, rows, H, "n");
  check(hp, rows, 3 * H, "hp");
  check(diff, rows, H, "diff");
  check(grad_out, rows, H, "grad_out");
  check(grad_xp, rows, 3 * H, "grad_xp");
  check(grad_hp, rows, 3 * H, "grad_hp");
  const auto off = offsets(sizes, rows, B);
  Tensor dh = carry_of(gh_final, B, H, rz);
  const Matmul mm = backward_matmul(w);
  const float *RZ = rz.data_ptr<float>(), *N = n.data_ptr<float>(), *HP = hp.data_ptr<float>();
  const float *DF = diff.data_ptr<float>(), *GO = grad_out.data_ptr<float>();
  float *DX = grad_xp.data_ptr<float>(), *DP = grad_hp.data_ptr<float>(),
        *DH = dh.data_ptr<float>();
  run_steps(sizes, steps(sizes, off, !reverse), [&](int64_t lo, int64_t e, int64_t r0, Visit v) {
    for_rows(lo, e, 3 * H, [&](int64_t r) {
      const int64_t k = r0 + r;
      const float *rzz = RZ + k * 2 * H, *nn_ = N + k * H, *q = HP + k * 3 * H;
      const float *df = DF + k * H, *go = GO + k * H;
      float *dx = DX + k * 3 * H, *dp = DP + k * 3 * H, *dhh = DH + r * H;
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) {
        const float rv = rzz[j], zv = rzz[H + j], nv = nn_[j];
        const float g = dhh[j] + go[j];
        const float dn = (1.f - nv * nv) * (g - g * zv);
        const float dr = dn * q[2 * H + j] * (rv - rv * rv);
        const float dz = g * df[j] * (zv - zv * zv);
        dx[j] = dr;
        dx[H + j] = dz;
        dx[2 * H + j] = dn;
        dp[j] = dr;
        dp[H + j] = dz;
        dp[2 * H + j] = dn * rv;
        dhh[j] = g * zv;  // the GEMM adds grad_hp W onto it
      }
    });
    mm.run(DP + r0 * 3 * H + lo * 3 * H, 3 * H, e - lo, DH + lo * H, H, true, v.last && !initial_grad);
  });
  return {dh};
}

// ----------------------------------------------------------------------------------- RNN
// h' = act(xp + h W^T), act tanh (as 2 sigmoid(2x) - 1) or relu; nothing kept but h.
std::vector<Tensor> rnn_forward(const Tensor& xp, const Tensor& w, const Tensor& h0,
                                std::vector<int64_t> sizes, bool reverse, bool use_tanh) {
  const int64_t B = h0.size(0), H = h0.size(1), rows = xp.size(0);
  check(xp, rows, H, "xp");
  check(w, H, H, "weight_hh");
  const auto off = offsets(sizes, rows, B);
  Tensor hbuf = h0.contiguous().clone();
  const bool zero_start = is_zero(hbuf);
  Tensor out = torch::empty({rows, H}, xp.options());
  const Matmul mm = forward_matmul(w);
  const float* X = xp.data_ptr<float>();
  float *HB = hbuf.data_ptr<float>(), *OUT = out.data_ptr<float>();
  run_steps(sizes, steps(sizes, off, reverse), [&](int64_t lo, int64_t e, int64_t r0, Visit v) {
    float* o = OUT + r0 * H;
    mm.run(HB + lo * H, H, e - lo, o + lo * H, H, false, v.first && zero_start);
    for_rows(lo, e, H, [&](int64_t r) {
      float *oo = o + r * H, *hh = HB + r * H;
      const float* x = X + (r0 + r) * H;
      if (use_tanh) {
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) hh[j] = oo[j] = tanh_(oo[j] + x[j]);
      } else {
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) hh[j] = oo[j] = std::max(oo[j] + x[j], 0.f);
      }
    });
  });
  return {out, hbuf};
}

std::vector<Tensor> rnn_backward(const Tensor& w, const Tensor& grad_out, const OptTensor& gh_final,
                                 const Tensor& out, Tensor& grad_xp, std::vector<int64_t> sizes,
                                 bool reverse, bool use_tanh, bool initial_grad) {
  const int64_t rows = out.size(0), H = w.size(1), B = batch_of(sizes);
  check(out, rows, H, "out");
  check(grad_out, rows, H, "grad_out");
  check(grad_xp, rows, H, "grad_xp");
  const auto off = offsets(sizes, rows, B);
  Tensor dh = carry_of(gh_final, B, H, out);
  const Matmul mm = backward_matmul(w);
  const float *O = out.data_ptr<float>(), *GO = grad_out.data_ptr<float>();
  float *DX = grad_xp.data_ptr<float>(), *DH = dh.data_ptr<float>();
  run_steps(sizes, steps(sizes, off, !reverse), [&](int64_t lo, int64_t e, int64_t r0, Visit v) {
    for_rows(lo, e, H, [&](int64_t r) {
      const int64_t k = r0 + r;
      const float *hv = O + k * H, *go = GO + k * H;
      float *dx = DX + k * H, *dhh = DH + r * H;
      if (use_tanh) {
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) dx[j] = (1.f - hv[j] * hv[j]) * (dhh[j] + go[j]);
      } else {
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) dx[j] = hv[j] > 0.f ? dhh[j] + go[j] : 0.f;
      }
    });
    mm.run(DX + r0 * H + lo * H, H, e - lo, DH + lo * H, H, false, v.last && !initial_grad);
  });
  return {dh};
}

// One row of the peephole LSTM's forward step (see peephole_forward).
// ADD_X: x holds the row's projected input (else g already has it).
template <bool KEEP, bool ADD_X>
ALWAYS_INLINE void peephole_row(float* __restrict g, const float* __restrict x, const float* __restrict wi,
                         const float* __restrict wf, const float* __restrict wo,
                         float* __restrict cc, float* __restrict hh, float* __restrict out,
                         float* __restrict cp, float* __restrict cn, float* __restrict uu,
                         int64_t H) {
#pragma omp simd
  for (int64_t j = 0; j < H; ++j) {
    const auto in = [&](int64_t k) { return ADD_X ? g[k] + x[k] : g[k]; };
    const float c = cc[j];
    const float i = sigmoid(in(j) + wi[j] * c);
    const float f = sigmoid(in(H + j) + wf[j] * c);
    const float s = sigmoid(2.f * in(2 * H + j));
    const float cv = f * c + i * (2.f * s - 1.f);
    const float o = sigmoid(in(3 * H + j) + wo[j] * cv);
    const float uv = sigmoid(-2.f * cv);
    const float hv = o * (1.f - 2.f * uv);
    if constexpr (KEEP) {
      g[j] = i;
      g[H + j] = f;
      g[2 * H + j] = s;
      g[3 * H + j] = o;
      cp[j] = c;
      cn[j] = cv;
      uu[j] = uv;
    }
    cc[j] = cv;
    hh[j] = hv;
    out[j] = hv;
  }
}

// One row of the Cho GRU's second pass (see cho_forward).
template <bool KEEP>
ALWAYS_INLINE void cho_row(const float* __restrict g, const float* __restrict x,
                    const float* __restrict mr, float* __restrict hh, float* __restrict out,
                    float* __restrict n, float* __restrict diff, int64_t H) {
#pragma omp simd
  for (int64_t j = 0; j < H; ++j) {
    const float nv = tanh_(x[2 * H + j] + mr[j]);
    const float dv = hh[j] - nv;
    const float hv = nv + g[H + j] * dv;
    if constexpr (KEEP) {
      n[j] = nv;
      diff[j] = dv;
    }
    hh[j] = hv;
    out[j] = hv;
  }
}

// ------------------------------------------------------------------------- peephole LSTM
// cells/lstm_peephole.py: gates in torch's layout (i, f, g, o), xp carrying both biases;
// i = sigmoid(x_i + h_i + w_ci c), f = sigmoid(x_f + h_f + w_cf c), c' = f c + i tanh(g),
// o = sigmoid(x_o + h_o + w_co c'), h' = o tanh(c'); tanh(g) = 2s - 1 with s = sigmoid(2g)
// and tanh(c') = 1 - 2u with u = sigmoid(-2c'), as the LSTM's loop. Kept: acts = i, f, s, o;
// c_prev; c_new; u.
std::vector<Tensor> peephole_forward(const Tensor& xp, const Tensor& w, const Tensor& w_ci,
                                     const Tensor& w_cf, const Tensor& w_co, const Tensor& h0,
                                     const Tensor& c0, std::vector<int64_t> sizes, bool reverse,
                                     bool keep, const OptTensor& w_ih, const OptTensor& b1,
                                     const OptTensor& b2) {
  const int64_t B = h0.size(0), H = h0.size(1), rows = xp.size(0);
  const StepInput in(xp, w_ih, b1, b2, rows, 4 * H);
  check(w, 4 * H, H, "weight_hh");
  for (const Tensor* p : {&w_ci, &w_cf, &w_co}) check(p->view({1, -1}), 1, H, "peephole weight");
  const auto off = offsets(sizes, rows, B);
  auto opts = xp.options();
  Tensor hbuf = h0.contiguous().clone(), cbuf = c0.contiguous().clone();
  const bool zero_start = is_zero(hbuf);
  Tensor out = torch::empty({rows, H}, opts);
  Tensor acts = torch::empty({keep ? rows : B, 4 * H}, opts);
  Tensor c_prev = keep ? torch::empty({rows, H}, opts) : Tensor();
  Tensor c_new = keep ? torch::empty({rows, H}, opts) : Tensor();
  Tensor u = keep ? torch::empty({rows, H}, opts) : Tensor();
  const Matmul mm = forward_matmul(w);
  const float *WI = w_ci.data_ptr<float>();
  const float *WF = w_cf.data_ptr<float>(), *WO = w_co.data_ptr<float>();
  float *HB = hbuf.data_ptr<float>(), *CB = cbuf.data_ptr<float>();
  float *OUT = out.data_ptr<float>(), *A = acts.data_ptr<float>();
  float* CP = keep ? c_prev.data_ptr<float>() : nullptr;
  float* CN = keep ? c_new.data_ptr<float>() : nullptr;
  float* U = keep ? u.data_ptr<float>() : nullptr;
  run_steps(sizes, steps(sizes, off, reverse), [&](int64_t lo, int64_t e, int64_t r0, Visit v) {
    float* a = keep ? A + r0 * 4 * H : A;
    const bool add = in.into(a + lo * 4 * H, 4 * H, r0, lo, e);
    mm.run(HB + lo * H, H, e - lo, a + lo * 4 * H, 4 * H, add, v.first && zero_start);
    for_rows(lo, e, 4 * H, [&](int64_t r) {
      const int64_t k = (r0 + r) * H;
      float* g = a + r * 4 * H;
      const float* x = in.row(r0 + r);
      float *cc = CB + r * H, *hh = HB + r * H, *o_ = OUT + k;
      if (keep && x)
        peephole_row<true, true>(g, x, WI, WF, WO, cc, hh, o_, CP + k, CN + k, U + k, H);
      else if (keep)
        peephole_row<true, false>(g, x, WI, WF, WO, cc, hh, o_, CP + k, CN + k, U + k, H);
      else if (x)
        peephole_row<false, true>(g, x, WI, WF, WO, cc, hh, o_, nullptr, nullptr, nullptr, H);
      else
        peephole_row<false, false>(g, x, WI, WF, WO, cc, hh, o_, nullptr, nullptr, nullptr, H);
    });
  });
  if (!keep) return {out, hbuf, cbuf};
  return {out, hbuf, cbuf, acts, c_prev, c_new, u};
}

// With tc = 1 - 2u = tanh(c') and dh = carry + the output gradient:
// d_o = dh tc o'; dc = carry_c + dh o (1 - tc^2) + d_o w_co; d_i = dc (2s-1) i';
// d_f = dc c f'; d_g = 4 dc i s (1-s); dc_prev = dc f + d_i w_ci + d_f w_cf;
// dh_prev = grad_gates W. The peephole weights' gradients (sums of d_i c, d_f c, d_o c'
// over rows) are left to the caller, from grad_xp and the kept c's.
std::vector<Tensor> peephole_backward(const Tensor& w, const Tensor& w_ci, const Tensor& w_cf,
                                      const Tensor& w_co, const Tensor& grad_out,
                                      const OptTensor& gh_final, const OptTensor& gc_final,
                                      const Tensor& acts, const Tensor& c_prev, const Tensor& c_new,
                                      const Tensor& u, Tensor& grad_xp, std::vector<int64_t> sizes,
                                      bool reverse, bool initial_grad) {
  const int64_t rows = acts.size(0), H = w.size(1), B = batch_of(sizes);
  check(acts, rows, 4 * H, "acts");
  check(c_prev, rows, H, "c_prev");
  check(c_new, rows, H, "c_new");
  check(u, rows, H, "u");
  check(grad_out, rows, H, "grad_out");
  check(grad_xp, rows, 4 * H, "grad_xp");
  const auto off = offsets(sizes, rows, B);
  Tensor dh = carry_of(gh_final, B, H, acts), dc = carry_of(gc_final, B, H, acts);
  const Matmul mm = backward_matmul(w);
  const float *A = acts.data_ptr<float>(), *CP = c_prev.data_ptr<float>();
  const float *U = u.data_ptr<float>(), *GO = grad_out.data_ptr<float>();
  const float *WI = w_ci.data_ptr<float>(), *WF = w_cf.data_ptr<float>();
  const float* WO = w_co.data_ptr<float>();
  float *D = grad_xp.data_ptr<float>(), *DH = dh.data_ptr<float>(), *DC = dc.data_ptr<float>();
  run_steps(sizes, steps(sizes, off, !reverse), [&](int64_t lo, int64_t e, int64_t r0, Visit v) {
    for_rows(lo, e, 4 * H, [&](int64_t r) {
      const float* __restrict g = A + (r0 + r) * 4 * H;
      const float* __restrict cp = CP + (r0 + r) * H;
      const float* __restrict uu = U + (r0 + r) * H;
      const float* __restrict go = GO + (r0 + r) * H;
      float* __restrict d = D + (r0 + r) * 4 * H;
      float* __restrict dhh = DH + r * H;
      float* __restrict dcc = DC + r * H;
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) {
        const float i = g[j], f = g[H + j], s = g[2 * H + j], o = g[3 * H + j];
        const float tc = 1.f - 2.f * uu[j], dhv = dhh[j] + go[j];
        const float d_o = dhv * tc * o * (1.f - o);
        const float dcv = dcc[j] + dhv * o * (1.f - tc * tc) + d_o * WO[j];
        const float d_i = dcv * (2.f * s - 1.f) * i * (1.f - i);
        const float d_f = dcv * cp[j] * f * (1.f - f);
        d[j] = d_i;
        d[H + j] = d_f;
        d[2 * H + j] = 4.f * dcv * i * s * (1.f - s);
        d[3 * H + j] = d_o;
        dcc[j] = dcv * f + d_i * WI[j] + d_f * WF[j];
      }
    });
    mm.run(D + r0 * 4 * H + lo * 4 * H, 4 * H, e - lo, DH + lo * H, H, false, v.last && !initial_grad);
  });
  return {dh, dc};
}

// ------------------------------------------------------------------------------- Cho GRU
// cells/gru_cho.py: W_hh's rows (r, z | n) apart; xp carries both biases.
// [r, z] = sigmoid(x_rz + h W_rz^T); q = r h; n = tanh(x_n + q W_n^T); h' = n + z (h - n).
// Two products a step. Kept: rz (rows, 2H), n, q (rows, H; W_n's gradient reads it), diff.
std::vector<Tensor> cho_forward(const Tensor& xp, const Tensor& w, const Tensor& h0,
                                std::vector<int64_t> sizes, bool reverse, bool keep) {
  const int64_t B = h0.size(0), H = h0.size(1), rows = xp.size(0);
  check(xp, rows, 3 * H, "xp");
  check(w, 3 * H, H, "weight_hh");
  const auto off = offsets(sizes, rows, B);
  auto opts = xp.options();
  Tensor hbuf = h0.contiguous().clone();
  const bool zero_start = is_zero(hbuf);
  Tensor out = torch::empty({rows, H}, opts);
  Tensor rz = torch::empty({keep ? rows : B, 2 * H}, opts);
  Tensor q = torch::empty({keep ? rows : B, H}, opts);
  Tensor m = torch::empty({B, H}, opts);
  Tensor n = keep ? torch::empty({rows, H}, opts) : Tensor();
  Tensor diff = keep ? torch::empty({rows, H}, opts) : Tensor();
  const Matmul mm_rz = forward_matmul(w.narrow(0, 0, 2 * H));
  const Matmul mm_n = forward_matmul(w.narrow(0, 2 * H, H));
  const float* X = xp.data_ptr<float>();
  float *HB = hbuf.data_ptr<float>(), *OUT = out.data_ptr<float>(), *M = m.data_ptr<float>();
  float *RZ = rz.data_ptr<float>(), *Q = q.data_ptr<float>();
  float* N = keep ? n.data_ptr<float>() : nullptr;
  float* DF = keep ? diff.data_ptr<float>() : nullptr;
  run_steps(sizes, steps(sizes, off, reverse), [&](int64_t lo, int64_t e, int64_t r0, Visit v) {
    float* a = keep ? RZ + r0 * 2 * H : RZ;
    float* qq = keep ? Q + r0 * H : Q;
    mm_rz.run(HB + lo * H, H, e - lo, a + lo * 2 * H, 2 * H, false, v.first && zero_start);
    for_rows(lo, e, 2 * H, [&](int64_t r) {
      float* __restrict g = a + r * 2 * H;
      const float* __restrict x = X + (r0 + r) * 3 * H;
      const float* __restrict hh = HB + r * H;
      float* __restrict qr = qq + r * H;
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) {
        const float rv = sigmoid(g[j] + x[j]);
        g[j] = rv;
        g[H + j] = sigmoid(g[H + j] + x[H + j]);
        qr[j] = rv * hh[j];
      }
    });
    mm_n.run(qq + lo * H, H, e - lo, M + lo * H, H, false, v.first && zero_start);  // q = r h = 0
    for_rows(lo, e, 2 * H, [&](int64_t r) {
      const int64_t k = (r0 + r) * H;
      const float* g = a + r * 2 * H;
      const float* x = X + (r0 + r) * 3 * H;
      if (keep)
        cho_row<true>(g, x, M + r * H, HB + r * H, OUT + k, N + k, DF + k, H);
      else
        cho_row<false>(g, x, M + r * H, HB + r * H, OUT + k, nullptr, nullptr, H);
    });
  });
  if (!keep) return {out, hbuf};
  return {out, hbuf, rz, n, q, diff};
}

// g = carry + output gradient; d_n = g (1 - z)(1 - n^2); d_z = g diff z'; d_q = d_n W_n;
// d_r = d_q h r' with h = diff + n; dh_prev = g z + d_q r + [d_r, d_z] W_rz.
std::vector<Tensor> cho_backward(const Tensor& w, const Tensor& grad_out, const OptTensor& gh_final,
                                 const Tensor& rz, const Tensor& n, const Tensor& q,
                                 const Tensor& diff, Tensor& grad_xp, std::vector<int64_t> sizes,
                                 bool reverse, bool initial_grad) {
  const int64_t rows = rz.size(0), H = w.size(1), B = batch_of(sizes);
  check(rz, rows, 2 * H, "rz");
  check(n, rows, H, "n");
  check(q, rows, H, "q");
  check(diff, rows, H, "diff");
  check(grad_out, rows, H, "grad_out");
  check(grad_xp, rows, 3 * H, "grad_xp");
  const auto off = offsets(sizes, rows, B);
  Tensor dh = carry_of(gh_final, B, H, rz);
  Tensor dq = torch::empty({B, H}, rz.options());
  const Matmul mm_rz = backward_matmul(w.narrow(0, 0, 2 * H));
  const Matmul mm_n = backward_matmul(w.narrow(0, 2 * H, H));
  const float *RZ = rz.data_ptr<float>(), *N = n.data_ptr<float>();
  const float *DF = diff.data_ptr<float>(), *GO = grad_out.data_ptr<float>();
  float *DX = grad_xp.data_ptr<float>(), *DH = dh.data_ptr<float>(), *DQ = dq.data_ptr<float>();
  run_steps(sizes, steps(sizes, off, !reverse), [&](int64_t lo, int64_t e, int64_t r0, Visit v) {
    for_rows(lo, e, 2 * H, [&](int64_t r) {
      const int64_t k = r0 + r;
      const float* __restrict g = RZ + k * 2 * H;
      const float* __restrict nn_ = N + k * H;
      const float* __restrict df = DF + k * H;
      const float* __restrict go = GO + k * H;
      float* __restrict dx = DX + k * 3 * H;
      float* __restrict dhh = DH + r * H;
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) {
        const float zv = g[H + j], nv = nn_[j], gv = dhh[j] + go[j];
        dx[H + j] = gv * df[j] * zv * (1.f - zv);
        dx[2 * H + j] = (1.f - nv * nv) * (gv - gv * zv);
        dhh[j] = gv * zv;
      }
    });
    mm_n.run(DX + r0 * 3 * H + 2 * H + lo * 3 * H, 3 * H, e - lo, DQ + lo * H, H, false);
    for_rows(lo, e, 2 * H, [&](int64_t r) {
      const int64_t k = r0 + r;
      const float* __restrict g = RZ + k * 2 * H;
      const float* __restrict nn_ = N + k * H;
      const float* __restrict df = DF + k * H;
      const float* __restrict dqq = DQ + r * H;
      float* __restrict dx = DX + k * 3 * H;
      float* __restrict dhh = DH + r * H;
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) {
        const float rv = g[j], h = df[j] + nn_[j];
        dx[j] = dqq[j] * h * rv * (1.f - rv);
        dhh[j] += dqq[j] * rv;
      }
    });
    mm_rz.run(DX + r0 * 3 * H + lo * 3 * H, 3 * H, e - lo, DH + lo * H, H, true, v.last && !initial_grad);
  });
  return {dh};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  namespace py = pybind11;
  m.def("stack_transposed", &stack_transposed, "[a_0^T; a_1^T; ...] as one contiguous matrix");
  m.def("lstm_seq_forward", &lstm_forward, "LSTM layer-direction, every step", py::arg("xp"),
        py::arg("w"), py::arg("h0"), py::arg("c0"), py::arg("sizes"), py::arg("reverse"),
        py::arg("keep"), py::arg("w_ih") = py::none(), py::arg("b1") = py::none(),
        py::arg("b2") = py::none());
  m.def("lstm_seq_backward", &lstm_backward, "its hand-written backward");
  m.def("gru_seq_forward", &gru_forward, "GRU layer-direction, every step");
  m.def("gru_seq_backward", &gru_backward, "its hand-written backward");
  m.def("rnn_seq_forward", &rnn_forward, "Elman RNN layer-direction, every step");
  m.def("rnn_seq_backward", &rnn_backward, "its hand-written backward");
  m.def("lstm_peephole_seq_forward", &peephole_forward, "peephole LSTM layer-direction",
        py::arg("xp"), py::arg("w"), py::arg("w_ci"), py::arg("w_cf"), py::arg("w_co"),
        py::arg("h0"), py::arg("c0"), py::arg("sizes"), py::arg("reverse"), py::arg("keep"),
        py::arg("w_ih") = py::none(), py::arg("b1") = py::none(), py::arg("b2") = py::none());
  m.def("lstm_peephole_seq_backward", &peephole_backward, "its hand-written backward");
  m.def("gru_cho_seq_forward", &cho_forward, "Cho GRU layer-direction, every step");
  m.def("gru_cho_seq_backward", &cho_backward, "its hand-written backward");
}
