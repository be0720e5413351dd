"""Placeholder entry point until the bench lands: says what exists and exits 0.

It builds every registered architecture in every implementation it has, runs
one tiny forward pass through each so that `nox -s bench` checks something
real, and prints what it did. No numbers are written: none are measured yet.
"""

from __future__ import annotations

import sys

import torch

import rnnsuite


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    print("rnnsuite bench: the measuring bench is not built yet (issue 4).")
    print("Smoke-checking every architecture × implementation instead:")
    x = torch.randn(5, 2, 3)
    for arch in rnnsuite.ARCHITECTURES:
        for impl in rnnsuite.implementations_of(arch):
            model = rnnsuite.build(arch, impl, input_size=3, hidden_size=4)
            out, _ = model(x)
            print(f"  {arch:14s} {impl:8s} output {tuple(out.shape)}  ok")
    print("No results written; nothing timed.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
