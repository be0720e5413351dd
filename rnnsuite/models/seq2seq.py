"""Encoder–decoder translation (d2l) and its two attention variants (Udacity).

Seq2SeqDecoder is d2l's: every decoder input is the token embedding joined to
the encoder's top-layer output at the last source step (the "context"), and
the decoder starts from the encoder's final state. AttentionDecoder replaces
the fixed context with attention over all source steps, masked to the valid
length: "additive" (Bahdanau: score vᵀ tanh(W_q q + W_k k), query = previous
top-layer state, context fed into the RNN) or "multiplicative" (Luong
"general": score qᵀ W k, query = current top-layer state, output from
tanh(W_c [h; context])). All recurrent parts come from rnnsuite.build.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..registry import build


def _top_h(state) -> Tensor:
    return (state[0] if isinstance(state, tuple) else state)[-1]


def xavier_init(module: nn.Module) -> None:
    """d2l's init_seq2seq: Xavier-uniform on Linear weights and on every RNN weight."""
    for name, p in module.named_parameters():
        if "weight" in name and p.dim() == 2 and "embedding" not in name:
            nn.init.xavier_uniform_(p)


class Seq2SeqEncoder(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        embed_size: int,
        hidden_size: int,
        num_layers: int,
        dropout: float = 0.0,
        *,
        arch: str = "gru",
        impl: str = "builtin",
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.rnn = build(
            arch,
            impl,
            input_size=embed_size,
            hidden_size=hidden_size,
            num_layers=num_layers,
            dropout=dropout,
        )

    def forward(self, src: Tensor):
        """src (B, T) → outputs (T, B, H), final state."""
        return self.rnn(self.embedding(src.T))


class Seq2SeqDecoder(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        embed_size: int,
        hidden_size: int,
        num_layers: int,
        dropout: float = 0.0,
        *,
        arch: str = "gru",
        impl: str = "builtin",
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.rnn = build(
            arch,
            impl,
            input_size=embed_size + hidden_size,
            hidden_size=hidden_size,
            num_layers=num_layers,
            dropout=dropout,
        )
        self.dense = nn.Linear(hidden_size, vocab_size)

    def init_state(self, enc_outputs: Tensor, enc_state, src_valid_len: Tensor | None):
        return enc_outputs, enc_state

    def forward(self, tgt_in: Tensor, state):
        """tgt_in (B, T) → logits (B, T, V), new state."""
        enc_outputs, hidden = state
        emb = self.embedding(tgt_in.T)
        context = enc_outputs[-1].unsqueeze(0).expand(emb.shape[0], -1, -1)
        out, hidden = self.rnn(torch.cat([emb, context], -1), hidden)
        return self.dense(out).transpose(0, 1), (enc_outputs, hidden)


class AttentionDecoder(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        embed_size: int,
        hidden_size: int,
        num_layers: int,
        dropout: float = 0.0,
        *,
        score: str = "additive",
        arch: str = "gru",
        impl: str = "builtin",
    ) -> None:
        super().__init__()
        if score not in ("additive", "multiplicative"):
            raise ValueError(f"score must be 'additive' or 'multiplicative', got {score!r}")
        self.score = score
        self.embedding = nn.Embedding(vocab_size, embed_size)
        rnn_in = embed_size + hidden_size if score == "additive" else embed_size
        self.rnn = build(
            arch,
            impl,
            input_size=rnn_in,
            hidden_size=hidden_size,
            num_layers=num_layers,
            dropout=dropout,
        )
        if score == "additive":
            self.w_q = nn.Linear(hidden_size, hidden_size, bias=False)
            self.w_k = nn.Linear(hidden_size, hidden_size, bias=False)
            self.w_v = nn.Linear(hidden_size, 1, bias=False)
        else:
            self.w_a = nn.Linear(hidden_size, hidden_size, bias=False)
            self.w_c = nn.Linear(2 * hidden_size, hidden_size)
        self.dense = nn.Linear(hidden_size, vocab_size)
        self.attention_weights: list[Tensor] = []

    def init_state(self, enc_outputs: Tensor, enc_state, src_valid_len: Tensor | None):
        keys = enc_outputs.transpose(0, 1)  # (B, S, H)
        return keys, enc_state, src_valid_len

    def attend(self, query: Tensor, keys: Tensor, valid_len: Tensor | None) -> Tensor:
        """query (B, H), keys (B, S, H) → context (B, H); masked softmax over S."""
        if self.score == "additive":
            scores = self.w_v(torch.tanh(self.w_q(query).unsqueeze(1) + self.w_k(keys))).squeeze(-1)
        else:
            scores = torch.bmm(keys, self.w_a(query).unsqueeze(-1)).squeeze(-1)
        if valid_len is not None:
            steps = torch.arange(keys.shape[1], device=keys.device)
            scores = scores.masked_fill(steps[None, :] >= valid_len[:, None], -1e6)
        weights = F.softmax(scores, dim=-1)
        self.attention_weights.append(weights.detach())
        return torch.bmm(weights.unsqueeze(1), keys).squeeze(1)

    def forward(self, tgt_in: Tensor, state):
        keys, hidden, valid_len = state
        emb = self.embedding(tgt_in.T)  # (T, B, E)
        self.attention_weights = []
        outs = []
        for x in emb.unbind(0):
            if self.score == "additive":
                context = self.attend(_top_h(hidden), keys, valid_len)
                out, hidden = self.rnn(torch.cat([x, context], -1).unsqueeze(0), hidden)
                outs.append(out[0])
            else:
                out, hidden = self.rnn(x.unsqueeze(0), hidden)
                context = self.attend(out[0], keys, valid_len)
                outs.append(torch.tanh(self.w_c(torch.cat([out[0], context], -1))))
        logits = self.dense(torch.stack(outs, 1))
        return logits, (keys, hidden, valid_len)


class Seq2Seq(nn.Module):
    def __init__(self, encoder: Seq2SeqEncoder, decoder: nn.Module) -> None:
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def forward(self, src: Tensor, tgt_in: Tensor, src_valid_len: Tensor | None = None) -> Tensor:
        enc_out, enc_state = self.encoder(src)
        logits, _ = self.decoder(tgt_in, self.decoder.init_state(enc_out, enc_state, src_valid_len))
        return logits

    @torch.no_grad()
    def greedy(
        self, src: Tensor, src_valid_len: Tensor | None, bos: int, eos: int, num_steps: int
    ) -> list[list[int]]:
        """Greedy decoding from <bos>; each sequence is cut at its first <eos>."""
        enc_out, enc_state = self.encoder(src)
        state = self.decoder.init_state(enc_out, enc_state, src_valid_len)
        token = torch.full((src.shape[0], 1), bos, dtype=torch.long, device=src.device)
        steps = []
        for _ in range(num_steps):
            logits, state = self.decoder(token, state)
            token = logits.argmax(-1)
            steps.append(token[:, 0])
        out = []
        for row in torch.stack(steps, 1).tolist():
            out.append(row[: row.index(eos)] if eos in row else row)
        return out
