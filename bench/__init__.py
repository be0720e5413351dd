"""rnnsuite's benchmark: matrices of cells, measurement, results, reports, gate.

It reads left to right: matrix (matrices/*.toml, parsed in matrix.py) → cells
(cells.py: expand axes, filter) → measurement (measure.py, with timing.py's
interleaved timer, flops.py, memory.py, workload.py, impls.py) → results
(results.py: JSON Lines with provenance.py's machine facts) → report
(report/: one small function per section of each page; plots.py), compare (compare.py)
and the regression gate (gate.py).
"""

import os as _os

# torch.compile's inductor would otherwise start a pool of compile workers that
# compete with the measurement for this machine's few cores. Set before torch
# reads its config; an explicit setting in the environment wins.
_os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")
