"""The Ray executor against a real Ray instance (one per module: two CPUs, one benchmarking
node resource): training cells give the local executor's exact metrics; timing groups
never overlap; a task whose worker dies is retried once, then recorded failed while the
rest finish; an interrupted Ray run resumes; the driver is the only writer."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason='the Ray extra: pip install "rnnsuite[ray]"')

from bench.quality import study as quality  # noqa: E402
from bench.study import executors  # noqa: E402
from bench.throughput.runner import run  # noqa: E402
from helpers import human_numbers_matrix  # noqa: E402

TIMED = """
name = "ray-timed"
description = "three timing groups"
seeds = [0]
[fixed]
device = "cpu"
threads = 1
warmup = 0
repeats = 2
det_steps = 1
size = "tiny"
[[blocks]]
name = "b"
axes = { arch = ["gru", "rnn", "lstm"], impl = ["scratch", "builtin"] }
"""

QUALITY = human_numbers_matrix(
    "ray-quality",
    '{ arch = ["gru", "rnn"], impl = ["builtin", "scratch"] }',
    seeds="[0, 1]",
    batches=3,
)


@pytest.fixture(scope="module", autouse=True)
def cluster():
    ray.init(
        num_cpus=2, resources={executors.NODE_RESOURCE: 1}, include_dashboard=False,
        log_to_driver=False,
    )  # fmt: skip
    yield
    ray.shutdown()


def _records(path: Path) -> dict[str, dict]:
    lines = (path / "results.jsonl").read_text().splitlines()
    return {r["cell_id"]: r for r in map(json.loads, lines)}


def test_training_cells_give_the_local_executors_exact_metrics(tmp_path):
    path = tmp_path / "q.toml"
    path.write_text(QUALITY)
    quiet = {"echo": lambda *_: None, "results_dir": tmp_path, "matrix_path": path}
    assert quality.run("local", **quiet) == (8, 0)
    lines: list[str] = []
    shown = {**quiet, "echo": lines.append}
    assert quality.run("ray", executor="ray", **shown) == (8, 0)
    assert "(ETA" in lines[1] and "2 running, 5 queued)" in lines[1]  # two CPUs: two at once
    local, remote = _records(tmp_path / "local"), _records(tmp_path / "ray")
    assert set(local) == set(remote)
    for cid, rec in remote.items():
        assert rec["metric"] == local[cid]["metric"], cid  # bit for bit
        assert rec["result"]["metrics"] == local[cid]["result"]["metrics"], cid
        assert rec["provenance"]["machine_fingerprint"] and rec["provenance"]["torch_threads"] == 1
        assert (rec["provenance"]["executor"], local[cid]["provenance"]["executor"]) == (
            "ray",
            "local",
        )


def test_timing_groups_never_overlap_and_a_dead_worker_is_retried_once(tmp_path, monkeypatch):
    path = tmp_path / "t.toml"
    path.write_text(TIMED)
    log = tmp_path / "attempts.log"
    monkeypatch.setenv("RNNSUITE_BENCH_INJECT_FAULT", "exit:rnn and builtin")
    monkeypatch.setenv("RNNSUITE_BENCH_FAULT_LOG", str(log))
    s = run(str(path), run_id="t", results_dir=tmp_path, quiet=True, executor="ray")
    recs = _records(tmp_path / "t")
    assert len(recs) == 6 and s.exit_code == 1
    dead = {cid for cid, r in recs.items() if r["status"] == "failed"}
    # the whole rnn group died with its worker: both its cells, retried once, then failed
    assert dead == {cid for cid in recs if cid.startswith("rnn/")}
    assert len(log.read_text().splitlines()) == 2  # the first attempt and the one retry
    assert all("worker died (retried once)" in recs[c]["error"] for c in dead)
    assert all(r["status"] == "ok" for c, r in recs.items() if c not in dead)
    windows = sorted({tuple(r["group_window"]) for r in recs.values() if "group_window" in r})
    assert len(windows) == 2
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(windows))


def test_an_interrupted_ray_run_resumes(tmp_path, monkeypatch):
    path = tmp_path / "t.toml"
    path.write_text(TIMED.replace("repeats = 2", "timing = false"))
    real_map = executors.RayExecutor.map

    def stop_after_one(self, execute, units):
        for n, item in enumerate(real_map(self, execute, units)):
            yield item
            if n == 0:
                raise KeyboardInterrupt  # Ctrl-C after the first group came back

    monkeypatch.setattr(executors.RayExecutor, "map", stop_after_one)
    s = run(str(path), run_id="r", results_dir=tmp_path, quiet=True, executor="ray")
    assert s.interrupted and len(_records(tmp_path / "r")) == 2
    monkeypatch.setattr(executors.RayExecutor, "map", real_map)
    again = run(str(path), run_id="r", results_dir=tmp_path, quiet=True, executor="ray")
    assert again.already_done == 2 and again.ok == 4 and len(_records(tmp_path / "r")) == 6
    local = run(str(path), run_id="r", results_dir=tmp_path, quiet=True)  # either executor
    assert local.already_done == 6


def test_asking_for_ray_without_it_names_the_install(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *a, **k):
        if name == "ray":
            raise ImportError("no ray")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(executors.StudyError, match=r'pip install "rnnsuite\[ray\]"'):
        executors.make("ray", timing=False, failed=None)


def test_training_cells_take_one_cpu_or_one_gpu_and_timing_a_whole_node():
    def options(**kw):
        return executors.RayExecutor("local", failed=None, **kw).task_options()

    cpu, slot = options(timing=False)
    assert (cpu["num_cpus"], "num_gpus" in cpu, slot) == (1, False, "CPU")
    gpu, slot = options(timing=False, device="cuda")
    assert (gpu["num_cpus"], gpu["num_gpus"], slot) == (1, 1, "GPU")
    timed, slot = options(timing=True, device="cuda")
    node = executors.NODE_RESOURCE
    assert (timed["num_cpus"], timed["resources"], slot) == (0, {node: 1}, node)
    assert all(o["max_retries"] == 1 for o in (cpu, gpu, timed))
