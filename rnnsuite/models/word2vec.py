"""Skip-gram with negative sampling, the model of Udacity's word2vec lesson (SkipGramNeg).

Two embedding tables: ``in_embed`` holds the centre-word vectors (the ones kept as "the"
word vectors) and ``out_embed`` the context vectors that the centre vectors are scored
against. Both start uniform in [-1, 1] as in the course. Instead of a softmax over the
whole vocabulary, each true (centre, context) pair is contrasted with ``n_samples`` noise
words drawn from a unigram^0.75 distribution (Mikolov et al., 2013).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class SkipGramNeg(nn.Module):
    """Centre and context embedding tables plus a noise sampler."""

    def __init__(
        self,
        n_vocab: int,
        n_embed: int,
        noise_dist: Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        """``noise_dist`` (length ``n_vocab``, need not sum to 1) defaults to uniform;
        ``generator`` makes the uniform(-1, 1) initialisation reproducible."""
        super().__init__()
        if n_vocab < 1 or n_embed < 1:
            raise ValueError(f"n_vocab and n_embed must be >= 1, got {n_vocab} and {n_embed}")
        if noise_dist is not None:
            noise_dist = torch.as_tensor(noise_dist, dtype=torch.float)
            if noise_dist.shape != (n_vocab,):
                raise ValueError(
                    f"noise_dist must have shape ({n_vocab},), got {tuple(noise_dist.shape)}"
                )
            if (noise_dist < 0).any() or not noise_dist.sum() > 0:
                raise ValueError("noise_dist must be non-negative with a positive sum")
        self.n_vocab, self.n_embed = n_vocab, n_embed
        self.noise_dist = noise_dist
        self.in_embed = nn.Embedding(n_vocab, n_embed)
        self.out_embed = nn.Embedding(n_vocab, n_embed)
        nn.init.uniform_(self.in_embed.weight, -1.0, 1.0, generator=generator)
        nn.init.uniform_(self.out_embed.weight, -1.0, 1.0, generator=generator)

    def forward_input(self, ids: Tensor) -> Tensor:
        """Centre-word vectors, shape ``ids.shape + (n_embed,)``."""
        return self.in_embed(ids)

    def forward_output(self, ids: Tensor) -> Tensor:
        """Context-word vectors, shape ``ids.shape + (n_embed,)``."""
        return self.out_embed(ids)

    def forward_noise(
        self, batch_size: int, n_samples: int, *, generator: torch.Generator | None = None
    ) -> Tensor:
        """Context vectors of ``n_samples`` noise words per example, (batch, n_samples, n_embed).

        Drawn with replacement, so a noise word may repeat or even equal the true context
        word; the course accepts that and so does the original word2vec."""
        if batch_size < 1 or n_samples < 1:
            raise ValueError(
                f"batch_size and n_samples must be >= 1, got {batch_size}, {n_samples}"
            )
        dist = self.noise_dist
        if dist is None:
            dist = torch.ones(self.n_vocab)
        dist = dist.to(self.out_embed.weight.device)
        noise_ids = torch.multinomial(
            dist, batch_size * n_samples, replacement=True, generator=generator
        )
        return self.out_embed(noise_ids).view(batch_size, n_samples, self.n_embed)


class NegativeSamplingLoss(nn.Module):
    """-mean over the batch of log σ(u_o·v_c) + Σ_k log σ(−u_k·v_c).

    ``F.logsigmoid`` instead of ``sigmoid().log()`` (the course's form) because the
    latter underflows to log(0) = -inf once a score passes about -100."""

    def forward(
        self, input_vectors: Tensor, output_vectors: Tensor, noise_vectors: Tensor
    ) -> Tensor:
        """input/output (batch, n_embed), noise (batch, n_samples, n_embed) -> scalar."""
        if input_vectors.shape != output_vectors.shape or input_vectors.dim() != 2:
            raise ValueError(
                "input_vectors and output_vectors must both be (batch, n_embed), got "
                f"{tuple(input_vectors.shape)} and {tuple(output_vectors.shape)}"
            )
        if noise_vectors.dim() != 3 or (
            noise_vectors.shape[0],
            noise_vectors.shape[2],
        ) != tuple(input_vectors.shape):
            raise ValueError(
                "noise_vectors must be (batch, n_samples, n_embed) matching the input, got "
                f"{tuple(noise_vectors.shape)}"
            )
        true_score = (output_vectors * input_vectors).sum(dim=1)  # (batch,)
        noise_score = torch.bmm(noise_vectors, input_vectors.unsqueeze(2)).squeeze(2)  # (b, k)
        per_example = F.logsigmoid(true_score) + F.logsigmoid(-noise_score).sum(dim=1)
        return -per_example.mean()


def nearest_neighbours(
    embedding_weight: Tensor, ids: Tensor | list[int], k: int
) -> tuple[Tensor, Tensor]:
    """The ``k`` rows most cosine-similar to each row in ``ids``, the row itself excluded.

    Returns (neighbour ids, similarities), both (len(ids), k), most similar first. The
    word itself is excluded because it is always its own nearest neighbour (similarity 1)."""
    weight = embedding_weight.detach()
    if weight.dim() != 2:
        raise ValueError(f"embedding_weight must be 2-D, got shape {tuple(weight.shape)}")
    ids = torch.as_tensor(ids, dtype=torch.long, device=weight.device).reshape(-1)
    n_vocab = weight.shape[0]
    if not 1 <= k <= n_vocab - 1:
        raise ValueError(f"k must be in 1..{n_vocab - 1} (vocabulary minus the word), got {k}")
    if ids.numel() and (ids.min() < 0 or ids.max() >= n_vocab):
        raise ValueError(f"ids must lie in 0..{n_vocab - 1}")
    unit = F.normalize(weight.float(), dim=1)
    sims = unit[ids] @ unit.T  # (n, n_vocab)
    sims[torch.arange(ids.numel(), device=weight.device), ids] = float("-inf")
    top = sims.topk(k, dim=1)
    return top.indices, top.values
