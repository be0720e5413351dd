"""``scripts/cuda-check OUT_DIR``: the CUDA half of the bench as one time-boxed command.

Made for a GPU machine that is lent for a few minutes, cannot install anything and
sends back only a few small files. In order, each step a subprocess with its own time
limit (a step that fails or runs out of time is recorded and the next one still runs):

1. ``env``: the device's facts (GPU model, driver, CUDA/cuDNN, torch, TF32 flags);
2. ``tests``: ``pytest -m cuda tests/test_cuda.py`` (scratch vs cuDNN parity, determinism
   settings, CUDA peak memory, one bench group measured end to end);
3. ``matrix``: ``bench/matrices/cuda.toml`` without its compiled cells;
4. ``recipes``: two short recipes of the documents on CUDA, one seed, and their report;
5. ``matrix-compiled``: the compiled cells' groups under the same run id (compiling is what
   most likely runs long, so it comes after the recipes and gets what time is left);
6. ``report`` and ``report-recipes``: the bench report and the reproduction report.

Everything is packed into ``OUT_DIR/cuda-check/`` after every step (so a run cut short
still leaves its pack): summary.md, env.json, steps.jsonl, results.jsonl, log.txt and
cuda-check.tar.gz, which unpacks into ``results/cuda-<date>/`` and ``reports/cuda-<date>/``
(and the recipes' ``-recipes-`` twins) at the repository root. ``--dry-run`` runs the
same steps on the CPU with tiny shapes and limits, in a temporary directory; the tests
run it so the script cannot rot between GPUs. ``--pack-data DIR`` copies the datasets
these steps read into DIR (``.cuda-data/``, git-ignored), for a machine without
``../shared/data``.

Layout: cli.py (arguments, the run), steps.py (the steps and their time limits),
proc.py (one time-boxed subprocess), envinfo.py, tiny.py (the dry run's matrix),
datapack.py, pack.py (the returned files and their limits), headline.py (summary.md's
ratios).
"""
