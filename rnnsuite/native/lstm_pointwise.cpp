// The scratch LSTM's per-step pointwise work, each step's in one pass.
//
// Why: in torch ops the step's gate arithmetic is 8 (inference) to 20 (training) small
// calls; each costs ~2.5 us of dispatch, and at B*H = 16k elements none is big enough for
// torch to split across threads. Here it is one call per step, split by rows across torch's
// intra-op threads. The maths is the module doc of rnnsuite/cells/lstm.py, to the letter:
// gates arrive in step order (i, f, o, g) with the g rows doubled, so one sigmoid gives
// i, f, o and s = sigmoid(2g), and tanh(g) = 2s - 1.
//
// Every tensor is float32 on the CPU with unit stride along its last dimension (rows may be
// strided); rnnsuite/native/__init__.py checks that before it calls in.

#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <cstdint>

namespace {

inline float sigmoid(float x) { return 1.f / (1.f + std::exp(-x)); }

// rows per parallel chunk: enough work (~4k elements) that a chunk pays for its thread
int64_t grain(int64_t H) { return std::max<int64_t>(1, 4096 / std::max<int64_t>(H, 1)); }

void check(const torch::Tensor& t, int64_t rows, int64_t cols, const char* name) {
  TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == torch::kFloat32,
              name, " must be a float32 CPU tensor");
  TORCH_CHECK(t.dim() == 2 && t.size(0) == rows && t.size(1) == cols && t.stride(1) == 1,
              name, " must be (", rows, ", ", cols, ") with unit stride along its rows");
}

// Inference: m = -2c in place, h written. m' = f m + 2i - 4 i s; u = sigmoid(m') =
// 1 - sigmoid(2c'), so tanh(c') = 1 - 2u and h' = o - 2 o u. When `z` is given (the next
// step's GEMM input [x_next | h], one row per batch row) it is filled here too: x_next
// copied into its first I columns, the new h into the rest, so the loop needs no cat.
void lstm_infer(const torch::Tensor& gates, torch::Tensor& m, torch::Tensor& h,
                const std::optional<torch::Tensor>& z, const std::optional<torch::Tensor>& x_next) {
  const int64_t B = m.size(0), H = m.size(1);
  check(gates, B, 4 * H, "gates");
  check(m, B, H, "m");
  check(h, B, H, "h");
  TORCH_CHECK(z.has_value() == x_next.has_value(), "z and x_next come together");
  const int64_t I = x_next ? x_next->size(1) : 0;
  if (z) {
    check(*x_next, B, I, "x_next");
    check(*z, B, I + H, "z");
  }
  const float* G = gates.data_ptr<float>();
  float* M = m.data_ptr<float>();
  float* O = h.data_ptr<float>();
  float* Z = z ? z->data_ptr<float>() : nullptr;
  const float* X = x_next ? x_next->data_ptr<float>() : nullptr;
  const int64_t gs = gates.stride(0), ms = m.stride(0), hs = h.stride(0);
  const int64_t zs = z ? z->stride(0) : 0, xs = x_next ? x_next->stride(0) : 0;
  at::parallel_for(0, B, grain(H), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const float* g = G + b * gs;
      float* mm = M + b * ms;
      float* hh = O + b * hs;
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) {
        const float i = sigmoid(g[j]), f = sigmoid(g[H + j]);
        const float o = sigmoid(g[2 * H + j]), s = sigmoid(g[3 * H + j]);
        const float mn = f * mm[j] + 2.f * i - 4.f * i * s;
        mm[j] = mn;
        hh[j] = o - 2.f * o * sigmoid(mn);
      }
      if (Z) {
        float* zz = Z + b * zs;
        std::copy(X + b * xs, X + b * xs + I, zz);
        std::copy(hh, hh + H, zz + I);
      }
    }
  });
}

// Training forward: `gates` holds h W_hh^T; the step's projected input `xp` is added here
// (one pass, not a separate add), the activations are written back into `gates` (kept for
// backward) and h into `h`; returns the new c and u = sigmoid(-2c').
// c' = f c + i (2s - 1), h' = o (1 - 2u).
std::vector<torch::Tensor> lstm_train_forward(torch::Tensor& gates, const torch::Tensor& xp,
                                              const torch::Tensor& c, torch::Tensor& h) {
  const int64_t B = c.size(0), H = c.size(1);
  check(gates, B, 4 * H, "gates");
  check(xp, B, 4 * H, "xp");
  check(c, B, H, "c");
  check(h, B, H, "h");
  auto c_new = torch::empty({B, H}, c.options());
  auto u = torch::empty({B, H}, c.options());
  float* G = gates.data_ptr<float>();
  const float* X = xp.data_ptr<float>();
  const float* C = c.data_ptr<float>();
  float* CN = c_new.data_ptr<float>();
  float* U = u.data_ptr<float>();
  float* O = h.data_ptr<float>();
  const int64_t gs = gates.stride(0), xs = xp.stride(0), cs = c.stride(0), hs = h.stride(0);
  at::parallel_for(0, B, grain(H), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      float* g = G + b * gs;
      const float* x = X + b * xs;
      const float* cc = C + b * cs;
      float* cn = CN + b * H;
      float* uu = U + b * H;
      float* hh = O + b * hs;
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) {
        const float i = sigmoid(g[j] + x[j]), f = sigmoid(g[H + j] + x[H + j]);
        const float o = sigmoid(g[2 * H + j] + x[2 * H + j]);
        const float s = sigmoid(g[3 * H + j] + x[3 * H + j]);
        g[j] = i;
        g[H + j] = f;
        g[2 * H + j] = o;
        g[3 * H + j] = s;
        const float cv = f * cc[j] + i * (2.f * s - 1.f);
        const float uv = sigmoid(-2.f * cv);
        cn[j] = cv;
        uu[j] = uv;
        hh[j] = o * (1.f - 2.f * uv);
      }
    }
  });
  return {c_new, u};
}

// Training backward of one step: from the gradient of the new state (dh = gh + the step's
// output gradient gout, added here; dc = gc) and the forward's kept activations, write the
// gates' gradient into grad_gates and return dc_prev = dc f.
// dc = gc + 4 dh o u (1 - u); gates' gradient [dc (2s-1), dc c, dh (1-2u), 2 dc i] * σ'.
torch::Tensor lstm_train_backward(const torch::Tensor& gh, const torch::Tensor& gout,
                                  const torch::Tensor& gc, const torch::Tensor& gates,
                                  const torch::Tensor& c, const torch::Tensor& u,
                                  torch::Tensor& grad_gates) {
  const int64_t B = c.size(0), H = c.size(1);
  check(gh, B, H, "gh");
  check(gout, B, H, "gout");
  check(gc, B, H, "gc");
  check(gates, B, 4 * H, "gates");
  check(c, B, H, "c");
  check(u, B, H, "u");
  check(grad_gates, B, 4 * H, "grad_gates");
  auto dc_prev = torch::empty({B, H}, c.options());
  const float *GH = gh.data_ptr<float>(), *GO = gout.data_ptr<float>();
  const float* GC = gc.data_ptr<float>();
  const float *G = gates.data_ptr<float>(), *C = c.data_ptr<float>(), *U = u.data_ptr<float>();
  float* D = grad_gates.data_ptr<float>();
  float* DP = dc_prev.data_ptr<float>();
  const int64_t ghs = gh.stride(0), gos = gout.stride(0), gcs = gc.stride(0);
  const int64_t gs = gates.stride(0);
  const int64_t cs = c.stride(0), us = u.stride(0), ds = grad_gates.stride(0);
  at::parallel_for(0, B, grain(H), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const float *dh = GH + b * ghs, *go = GO + b * gos, *dcn = GC + b * gcs;
      const float* g = G + b * gs;
      const float *cc = C + b * cs, *uu = U + b * us;
      float* d = D + b * ds;
      float* dp = DP + b * H;
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) {
        const float i = g[j], f = g[H + j], o = g[2 * H + j], s = g[3 * H + j];
        const float uv = uu[j], dhv = dh[j] + go[j];
        const float dc = dcn[j] + 4.f * dhv * o * uv * (1.f - uv);
        d[j] = dc * (2.f * s - 1.f) * i * (1.f - i);
        d[H + j] = dc * cc[j] * f * (1.f - f);
        d[2 * H + j] = dhv * (1.f - 2.f * uv) * o * (1.f - o);
        d[3 * H + j] = 2.f * dc * i * s * (1.f - s);
        dp[j] = dc * f;
      }
    }
  });
  return dc_prev;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, module) {
  module.def("lstm_infer", &lstm_infer, "inference step: m = -2c in place, h (and z) written",
             pybind11::arg("gates"), pybind11::arg("m"), pybind11::arg("h"),
             pybind11::arg("z") = pybind11::none(), pybind11::arg("x_next") = pybind11::none());
  module.def("lstm_train_forward", &lstm_train_forward, "training step forward");
  module.def("lstm_train_backward", &lstm_train_backward, "training step backward");
}
