"""A small Transformer baseline behind the RNN task models' interfaces.

TransformerClassifier stands in for TextClassifier (forward(ids, lengths=None) -> logits),
TransformerLM for WordLM (forward(ids) -> (logits, raw, out), reset()) and
TransformerCharLM for CharLM (forward(ids, state=None) -> (logits, state), predict), so
the recipes' loops train them unchanged and the bench can put them beside the RNNs.

All three are pre-norm (norm_first=True) nn.TransformerEncoder stacks with a final
LayerNorm and sinusoidal positions. Nested tensors are off (enable_nested_tensor=False):
that conversion drops padded positions in eval mode only, so train and eval would see
differently shaped intermediate results; masking is done with explicit masks instead.
In eval mode without grad torch still runs its fused encoder-layer kernel; it agrees
with the regular path to ~1e-6 (tests/test_transformer.py checks 1e-5).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..regularizers import tie_weights


class PositionalEncoding(nn.Module):
    """Adds Vaswani et al.'s sinusoidal positions to (B, T, D) inputs.

    The table is a non-persistent buffer: it follows .to(device) but stays out of the
    state_dict, so a checkpoint loads into a model built with another max_len."""

    pe: Tensor

    def __init__(self, dim: int, max_len: int = 2048) -> None:
        super().__init__()
        if dim < 1 or max_len < 1:
            raise ValueError(f"dim and max_len must be >= 1, got dim={dim}, max_len={max_len}")
        self.dim, self.max_len = dim, max_len
        pos = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)
        freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
        pe = torch.zeros(max_len, dim)
        pe[:, 0::2] = torch.sin(pos * freq)
        pe[:, 1::2] = torch.cos(pos * freq[: dim // 2])
        self.register_buffer("pe", pe, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        steps = x.shape[1]
        if steps > self.max_len:
            raise ValueError(
                f"sequence of {steps} positions is longer than max_len={self.max_len}; "
                "build the model with a larger max_len or cut the sequence"
            )
        return x + self.pe[:steps].to(x.dtype)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, max_len={self.max_len}"


def _encoder(
    dim: int, num_heads: int, num_layers: int, ff_dim: int | None, dropout: float
) -> nn.TransformerEncoder:
    """Pre-norm encoder stack with a final LayerNorm (pre-norm leaves the last residual
    stream unnormalised otherwise) and no nested-tensor conversion."""
    if num_heads < 1 or dim % num_heads:
        raise ValueError(
            f"embedding size {dim} must be divisible by num_heads={num_heads} "
            "(each head gets embedding size / num_heads features)"
        )
    if num_layers < 1:
        raise ValueError(f"num_layers must be >= 1, got {num_layers}")
    layer = nn.TransformerEncoderLayer(
        dim,
        num_heads,
        dim_feedforward=4 * dim if ff_dim is None else ff_dim,
        dropout=dropout,
        batch_first=True,
        norm_first=True,
    )
    return nn.TransformerEncoder(
        layer, num_layers, norm=nn.LayerNorm(dim), enable_nested_tensor=False
    )


def causal_mask(
    steps: int, device: torch.device | str | None = None, dtype: torch.dtype | None = None
) -> Tensor:
    """(T, T) float mask, -inf above the diagonal: position t sees positions <= t."""
    return nn.Transformer.generate_square_subsequent_mask(steps, device=device, dtype=dtype)


class TransformerClassifier(nn.Module):
    """Embedding + positions → encoder → mean over the valid positions → Linear.

    Unlike TextClassifier's "mean" readout, padding is excluded both from attention (a
    key padding mask) and from the mean, so a sequence scores the same alone or padded in
    any batch. Padding comes from ``lengths`` when given, else from ``ids == pad_id``;
    with a vocabulary where pad_id is also a real word (AG News' faithful vocabulary)
    pass lengths, or real occurrences of that word are masked too."""

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int = 64,
        num_classes: int = 4,
        *,
        num_heads: int = 4,
        num_layers: int = 2,
        ff_dim: int | None = None,
        dropout: float = 0.1,
        max_len: int = 2048,
        pad_id: int = 0,
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.pos = PositionalEncoding(embed_dim, max_len)
        self.drop = nn.Dropout(dropout)
        self.encoder = _encoder(embed_dim, num_heads, num_layers, ff_dim, dropout)
        self.fc = nn.Linear(embed_dim, num_classes)
        self.pad_id = pad_id

    def padding_mask(self, ids: Tensor, lengths: Tensor | None = None) -> Tensor:
        """(B, T) bool, True at padded positions."""
        steps = ids.shape[1]
        if lengths is None:
            pad = ids == self.pad_id
        else:
            lengths = torch.as_tensor(lengths, device=ids.device)
            if lengths.shape != ids.shape[:1]:
                raise ValueError(
                    f"lengths has shape {tuple(lengths.shape)}, expected ({ids.shape[0]},)"
                )
            if bool((lengths > steps).any()):
                raise ValueError(f"a length exceeds the padded width {steps}")
            pad = torch.arange(steps, device=ids.device) >= lengths.unsqueeze(1)
        if bool(pad.all(dim=1).any()):
            raise ValueError(
                "a sequence has no valid position (length 0, or only pad_id tokens); "
                "every sequence needs at least one token"
            )
        return pad

    def forward(self, ids: Tensor, lengths: Tensor | None = None) -> Tensor:
        pad = self.padding_mask(ids, lengths)
        x = self.drop(self.pos(self.embedding(ids)))
        x = self.encoder(x, src_key_padding_mask=pad)
        x = x.masked_fill(pad.unsqueeze(-1), 0.0)  # padded rows out of the mean
        valid = (~pad).sum(dim=1, keepdim=True).to(x.dtype)
        return self.fc(x.sum(dim=1) / valid)


class TransformerLM(nn.Module):
    """Causal Transformer LM with WordLM's interface: forward(ids) -> (logits, raw, out).

    raw is the encoder output (after its final LayerNorm), out the same after dropout,
    so AR/TAR terms apply as for WordLM. It is stateless: reset() does nothing and no
    context carries over between batches — where WordLM keeps its hidden state across
    fastai's grouped chunks, this model sees only the current sequence (position 0 of
    every batch is predicted from one token).

    Embeddings start at N(0, 1/hidden) and are scaled by sqrt(hidden) (Vaswani et al.):
    the input is as with torch's N(0, 1) default, but a tied output layer starts with
    unit-scale logits instead of ones sqrt(hidden) times too large."""

    def __init__(
        self,
        vocab_size: int,
        hidden_size: int = 64,
        num_layers: int = 2,
        *,
        num_heads: int = 4,
        ff_dim: int | None = None,
        dropout: float = 0.0,
        tie: bool = False,
        max_len: int = 2048,
    ) -> None:
        super().__init__()
        self.i_h = nn.Embedding(vocab_size, hidden_size)
        nn.init.normal_(self.i_h.weight, 0.0, hidden_size**-0.5)
        self.scale = math.sqrt(hidden_size)
        self.pos = PositionalEncoding(hidden_size, max_len)
        self.encoder = _encoder(hidden_size, num_heads, num_layers, ff_dim, dropout)
        self.drop = nn.Dropout(dropout)
        self.h_o = nn.Linear(hidden_size, vocab_size)
        if tie:
            tie_weights(self.h_o, self.i_h)

    def reset(self) -> None:
        """No-op: there is no state to forget (kept so WordLM's loops run unchanged)."""

    def forward(self, ids: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        x = self.drop(self.pos(self.i_h(ids) * self.scale))
        mask = causal_mask(ids.shape[1], ids.device, x.dtype)
        raw = self.encoder(x, mask=mask, is_causal=True)
        out = self.drop(raw)
        return self.h_o(out), raw, out


class TransformerCharLM(nn.Module):
    """TransformerLM with CharLM's interface: forward(ids, state=None) -> (logits, state).

    The "state" is the tail of the tokens seen so far, (B, ≤ window), prepended to the
    next ids; that is what lets CharLM-style token-by-token decoding (predict) work.
    window bounds that tail: set it to the training sequence length so decoding never
    reaches positions the model was not trained on. train_char_lm passes no state, so
    in training each batch starts from nothing, as d2l's RNNs start from zero."""

    def __init__(
        self,
        vocab_size: int,
        hidden_size: int = 32,
        num_layers: int = 1,
        *,
        num_heads: int = 4,
        ff_dim: int | None = None,
        dropout: float = 0.0,
        max_len: int = 2048,
        window: int | None = None,
    ) -> None:
        super().__init__()
        window = max_len if window is None else window
        if not 1 <= window <= max_len:
            raise ValueError(f"window must be in 1..max_len={max_len}, got {window}")
        self.vocab_size, self.window = vocab_size, window
        self.lm = TransformerLM(
            vocab_size,
            hidden_size,
            num_layers,
            num_heads=num_heads,
            ff_dim=ff_dim,
            dropout=dropout,
            max_len=max_len,
        )

    def forward(self, ids: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """ids (B, T) → logits (B, T, V) for those ids, and the context tail as state."""
        steps = ids.shape[1]
        context = ids
        keep = self.window - steps
        if state is not None and keep > 0:
            context = torch.cat([state[:, -keep:].to(ids.device), ids], dim=1)
        logits = self.lm(context)[0][:, -steps:]
        return logits, context[:, -self.window :]

    @torch.no_grad()
    def predict(self, prefix: list[int], num_preds: int) -> list[int]:
        """CharLM.predict: warm up on the prefix, then greedy decoding."""
        device = self.lm.h_o.weight.device
        state, outputs = None, [prefix[0]]
        for i in range(1, len(prefix) + num_preds):
            logits, state = self(torch.tensor([[outputs[-1]]], device=device), state)
            outputs.append(prefix[i] if i < len(prefix) else int(logits[0, -1].argmax()))
        return outputs


def transformer_heads(hidden_size: int) -> int:
    """Attention heads of the sequence baseline: 64 features a head (H // 64), at least
    one, lowered until it divides H (H = 256 → 4 heads)."""
    heads = max(1, hidden_size // 64)
    while hidden_size % heads:
        heads -= 1
    return heads


class CausalTransformer(nn.Module):
    """The Transformer baseline beside the RNNs, behind their interface (registered as
    ``transformer``, built-in only: ``rnnsuite.build("transformer", "builtin", ...)``).

    (T, B, I) features → Linear I→H (only when I ≠ H) → sinusoidal positions →
    ``num_layers`` pre-norm nn.TransformerEncoder layers (d_model H, H // 64 heads,
    feed-forward 4H, ReLU, no dropout unless asked; nested tensors off) with a causal mask
    → final LayerNorm → (T, B, H). Returns ``(output, None)`` as an RNN returns (output,
    state). The encoder is batch-first (the layout its fused inference kernel takes), so
    the input is transposed in and out. It knows its own cost (``forward_flops``).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        dropout: float = 0.0,
        *,
        bidirectional: bool = False,
        batch_first: bool = False,
        bias: bool = True,
        device: object = None,
        dtype: object = None,
    ) -> None:
        if bidirectional or batch_first or not bias:
            raise ValueError(
                "the Transformer baseline is causal, time-major and biased: build it with "
                "bidirectional=False, batch_first=False, bias=True"
            )
        super().__init__()
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.num_heads = transformer_heads(hidden_size)
        self.proj = nn.Linear(input_size, hidden_size) if input_size != hidden_size else None
        self.pos = PositionalEncoding(hidden_size, max_len=4096)
        self.encoder = _encoder(hidden_size, self.num_heads, num_layers, None, dropout)
        self._masks: dict[tuple[int, str, torch.dtype], Tensor] = {}
        if device is not None or dtype is not None:
            self.to(device=device, dtype=dtype)  # type: ignore[arg-type]

    def mask(self, steps: int, device: torch.device, dtype: torch.dtype) -> Tensor:
        """The (T, T) causal mask, built once per length, device and dtype."""
        key = (steps, str(device), dtype)
        if key not in self._masks:
            self._masks[key] = causal_mask(steps, device=device, dtype=dtype)
        return self._masks[key]

    def forward(self, x: Tensor, state: None = None) -> tuple[Tensor, None]:
        if not isinstance(x, Tensor) or x.dim() != 3:
            raise TypeError(
                "the Transformer baseline takes a padded (T, B, I) tensor, got "
                f"{type(x).__name__}{'' if not isinstance(x, Tensor) else tuple(x.shape)}"
            )
        h = self.proj(x) if self.proj is not None else x
        h = self.pos(h.transpose(0, 1))  # (B, T, H)
        steps = h.shape[1]
        h = self.encoder(h, mask=self.mask(steps, h.device, h.dtype), is_causal=True)
        return h.transpose(0, 1), None

    @staticmethod
    def forward_flops(*, T: int, B: int, I: int, H: int, layers: int) -> int:
        """FLOPs of one forward pass over a padded (T, B, I) batch (N = T·B tokens), per
        layer: Q, K, V and output projections 2·N·4H²; scores QKᵀ and A·V 2·2·T²·B·H (the
        full T×T square: the causal mask is applied, not skipped); feed-forward H→4H→H
        2·N·8H²; elementwise 25H + 4·T·heads a token (bias adds 9H, residuals 2H, ReLU 4H,
        two LayerNorms 10H; scale, softmax). Once: the I→H projection 2·N·I·H when I ≠ H,
        and the positions and the final LayerNorm, 6H a token."""
        N, heads = T * B, transformer_heads(H)
        per_layer = 2 * N * 4 * H * H + 4 * T * T * B * H + 2 * N * 8 * H * H
        per_layer += N * (25 * H + 4 * T * heads)
        total = layers * per_layer + N * 6 * H
        if I != H:
            total += 2 * N * I * H
        return int(total)
