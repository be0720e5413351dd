"""rnnsuite's benchmark: three kinds of study, one protocol.

Rooms: ``study/`` the shared protocol (matrix file, ``-k``, the execute → record loop,
the results store and its schema, provenance); ``throughput/`` ``bench run`` (matrix →
cells → interleaved timing groups); ``quality/`` and ``reproduce/`` the training
studies; ``report/`` every page as an ordered list of small section functions (and the
plots); ``gate/`` the baseline and the regression gate; ``archs.py`` the registry as the
bench sees it; ``plugins.py`` a user's own architectures; ``cli.py`` one handler per
command; ``cudacheck/`` the time-boxed CUDA half.
"""

import os as _os

# torch.compile's inductor would otherwise start a pool of compile workers that
# compete with the measurement for this machine's few cores. Set before torch
# reads its config; an explicit setting in the environment wins.
_os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")
