"""Throughput (``bench run``): matrix (axes.py, matrix.py) → cells and timing groups
(cells.py) → measure each group interleaved (runner.py, measure.py, with workload.py,
impls.py, timing.py, flops.py, memory.py, lengths.py) → records; compare.py diffs two runs."""
