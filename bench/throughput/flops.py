"""FLOPs counted analytically, and the machine's attainable FLOP/s for a cell's shapes.

Per computed token, per layer and direction, a cell with G gate blocks does
2·G·H·(I_l + H) multiply-adds-as-two-FLOPs in its two matrix multiplies (input
projection and recurrence), plus a small elementwise term E·H (bias adds,
gate arithmetic; a sigmoid or tanh counts as one FLOP):

    rnn 3H · lstm 14H · lstm_peephole 20H · gru 14H · gru_cho 10H

(G is the cell's ``gates``, E its registry record's ``pointwise``: rnnsuite/registry.py,
``Architecture.forward_flops``, which also holds the Transformer's own count.)

Computed tokens are T·B for a padded batch (the padding is computed too) and
sum(lengths) for a packed one. A training step counts as 3× the forward (the
usual convention: backward does two matrix multiplies per forward one);
regularizers, the loss and the optimizer are not counted.

The Transformer baseline (``transformer``, cost model "attention") is counted per layer
over the T·B computed tokens of a padded batch (N = T·B):

    Q, K, V and output projections   2·N·4H²
    attention scores QKᵀ and A·V     2·2·T²·B·H   (the full T×T square: the causal
                                                   mask is applied, not skipped)
    feed-forward H→4H→H              2·N·8H²
    elementwise, per token           25H + 4·T·heads  (bias adds 9H, residuals 2H,
                                     ReLU 4H, two LayerNorms 10H; scale, softmax)

plus, once, the I→H input projection 2·N·I·H when I ≠ H, and the positions and the
final LayerNorm, 6H a token. Training is 3× forward, as for the RNNs.

Attainable FLOP/s is measured in the same run, interleaved with the cell's
variants: the same matrix multiplies done plainly — the T·B×I by I×G·H input
projection, and T recurrent B×H by H×G·H products — with no gate arithmetic
or autograd, each through torch.mm (MKL on CPU) and, where this torch has it,
through oneDNN (faster on some CPUs, AMD's among them, and the route the scratch
cells take); the fastest rate is the machine's attainable FLOP/s for the cell's
shapes. Achieved / attainable is the FLOP fraction the report shows. (A fused
kernel such as oneDNN's LSTM can beat per-step products, so a fraction can
approach or pass 1 for the built-in.)
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from rnnsuite.cells import gemm

from .. import archs


def forward_flops(
    arch: str,
    *,
    I: int,
    H: int,
    layers: int,
    bidirectional: bool,
    tokens: int,
    T: int = 0,
    B: int = 0,
) -> int:
    """FLOPs of one forward pass over ``tokens`` computed (time step, sequence) pairs: the
    architecture's own cost model (its registry record)."""
    return archs.get(arch).forward_flops(
        T=T, B=B, I=I, H=H, layers=layers, bidirectional=bidirectional, tokens=tokens
    )


def cell_forward_flops(cell, tokens: int) -> int:
    """Forward FLOPs of a bench cell over ``tokens`` computed tokens (T·B when padded)."""
    return forward_flops(
        cell.arch,
        T=cell.T,
        B=cell.B,
        I=cell.I,
        H=cell.H,
        layers=cell.layers,
        bidirectional=cell.bidirectional,
        tokens=tokens,
    )


def train_flops(forward: int) -> int:
    return 3 * forward


def matmul_probes(
    arch: str, *, T: int, B: int, I: int, H: int, device: str, seed: int = 0
) -> dict[str, tuple[Callable[[], None], int]]:
    """Plain matrix multiplies of the cell's first-layer shapes, with their FLOPs.

    ``proj``: the input projection, one (T·B × I) by (I × G·H) product;
    ``step``: the recurrence, T products of (B × H) by (H × G·H). The faster of
    the two rates is the attainable FLOP/s the report divides by. For the Transformer
    (no recurrence) ``proj`` is the fused Q/K/V projection, (T·B × H) by (H × 3H), and
    ``step`` the feed-forward's first product, (T·B × H) by (H × 4H).
    """
    if not archs.get(arch).recurrent:
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(T * B, H, generator=g).to(device)
        w_qkv = torch.randn(H, 3 * H, generator=g).to(device)
        w_ff = torch.randn(H, 4 * H, generator=g).to(device)
        qkv_out = torch.empty(T * B, 3 * H, device=device)
        ff_out = torch.empty(T * B, 4 * H, device=device)

        def qkv() -> None:
            torch.mm(x, w_qkv, out=qkv_out)

        def ff() -> None:
            torch.mm(x, w_ff, out=ff_out)

        return {"proj": (qkv, 2 * T * B * H * 3 * H), "step": (ff, 2 * T * B * H * 4 * H)}
    G = archs.get(arch).gates
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(T * B, I, generator=g).to(device)
    w_ih = torch.randn(I, G * H, generator=g).to(device)
    h = torch.randn(B, H, generator=g).to(device)
    w_hh = torch.randn(H, G * H, generator=g).to(device)
    proj_out = torch.empty(T * B, G * H, device=device)
    step_out = torch.empty(B, G * H, device=device)

    def proj() -> None:
        torch.mm(x, w_ih, out=proj_out)

    def step() -> None:
        for _ in range(T):
            torch.mm(h, w_hh, out=step_out)

    probes = {
        "proj": (proj, 2 * T * B * I * G * H),
        "step": (step, 2 * T * B * H * G * H),
    }
    if gemm.usable(x):  # the same products through oneDNN, the route the scratch cells take
        w_ih_t, w_hh_t = w_ih.t().contiguous(), w_hh.t().contiguous()

        def proj_onednn() -> None:
            gemm.linear(x, w_ih_t)

        def step_onednn() -> None:
            for _ in range(T):
                gemm.linear(h, w_hh_t)

        probes["proj_onednn"] = (proj_onednn, probes["proj"][1])
        probes["step_onednn"] = (step_onednn, probes["step"][1])
    return probes
