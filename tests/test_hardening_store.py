"""The results store under hostile conditions: two writers, non-record lines, an empty run,
a full disk or an unwritable directory, and SIGTERM — each answered by one message and a
non-zero exit, with everything written before kept and resumable."""

from __future__ import annotations

import builtins
import errno
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import cli
from bench.study.results import ResultStore
from bench.throughput.runner import run

REPO = Path(__file__).resolve().parent.parent
TINY = """
name = "tiny"
seeds = [0]
[fixed]
size = "T4-B3-I4-H4"
lengths = "uniform"
threads = 1
warmup = 0
repeats = 2
det_steps = 2
timing = false
[[blocks]]
name = "main"
axes = { arch = ["lstm", "gru", "rnn"], impl = ["scratch", "builtin"], input = ["padded", "packed"] }
"""
CELLS = 12  # 3 groups of 4


@pytest.fixture
def tiny(tmp_path) -> Path:
    p = tmp_path / "tiny.toml"
    p.write_text(TINY)
    return p


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["RNNSUITE_NATIVE"] = "0"  # these processes test the store, not the kernels: no build
    return env


def _ids(path: Path) -> list[str]:
    return [json.loads(line)["cell_id"] for line in path.read_text().splitlines()]


def _leftovers(directory: Path) -> list[str]:
    """Temporary or empty files a failed write left behind."""
    return sorted(p.name for p in directory.rglob("*") if ".tmp" in p.name or p.stat().st_size == 0)


# -- records that are not records ------------------------------------------------------------
def test_non_records_are_skipped_and_reported_once_with_line_numbers(tmp_path, capsys):
    src = (REPO / "results" / "baseline" / "results.jsonl").read_text().splitlines()
    s = ResultStore(tmp_path / "r")
    s.dir.mkdir()
    lines = [src[0], '{"cell_id": 5, "status": "ok"}', "garbage", src[1], "[1, 2]", src[2]]
    s.results_path.write_text("\n".join(lines) + "\n")
    assert (
        len(s.latest()) == 3
        and len(s.latest()) == 3
        and s.finished_ids() == {json.loads(line)["cell_id"] for line in src[:3]}
    )
    err = capsys.readouterr().err
    assert err.count("skipped 3 lines") == 1, err  # once, however often it is read
    assert "line 2 (no integer 'schema')" in err
    assert "line 3 (not JSON)" in err and "line 5 (a JSON list, not an object)" in err


def test_report_counts_records_only(tmp_path, capsys):
    run_dir = tmp_path / "res" / "r24"
    run_dir.mkdir(parents=True)
    src = (REPO / "results" / "example-cpu" / "results.jsonl").read_text().splitlines()
    lines = [*src[:12], '{"cell_id": 5, "status": "ok"}', *src[12:24]]
    (run_dir / "results.jsonl").write_text("\n".join(lines) + "\n")
    out = tmp_path / "rep"
    assert (
        cli.main(["report", "r24", "--results-dir", str(tmp_path / "res"), "--out", str(out)]) == 0
    )
    text = (out / "README.md").read_text()
    assert "24 cells: 24 ok, 0 failed, 0 skipped." in text
    assert "nan" not in text and " L1.0" not in text and "1.0 thread" not in text
    assert "skipped 1 line that is not a record of schema 2: line 13" in capsys.readouterr().err


def test_report_of_a_run_without_results_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "res" / "empty").mkdir(parents=True)
    (tmp_path / "res" / "empty" / "results.jsonl").write_text("")
    args = ["report", "empty", "--results-dir", str(tmp_path / "res"), "--out", str(tmp_path / "o")]
    assert cli.main(args) == 2
    assert "run 'empty' has no results yet" in capsys.readouterr().err
    assert cli.main(["compare", "empty", "empty", "--results-dir", str(tmp_path / "res")]) == 2
    assert "run 'empty' has no results yet" in capsys.readouterr().err


# -- one writer per run ----------------------------------------------------------------------
# A real `bench` process whose run stalls after its first group (run) or cell (quality,
# reproduce): the measurements before are real, the rest waits to be stopped.
STALL = """
import sys, time
import bench.throughput.runner
from rnnsuite.recipes import tasks

calls = []

def stall(real):
    def wrapped(*a, **k):
        calls.append(1)
        if len(calls) > 1:
            open("stalled", "w").close()
            time.sleep(300)
        if sys.argv[1] == "quality":
            k["limits"] = {"epochs": 1, "max_batches": 2, "test_batches": 1, "num_train": 32,
                           "num_val": 8}
        return real(*a, **k)
    return wrapped

bench.throughput.runner.measure_group = stall(bench.throughput.runner.measure_group)
for name in list(tasks.TASKS):
    tasks.TASKS[name] = stall(tasks.TASKS[name])
from bench.cli import main
sys.exit(main(sys.argv[1:]))
"""
QUALITY = """
name = "mini"
kind = "quality"
seeds = [0]
threads = 1
[tasks.hn]
loop = "human_numbers"
metric = "accuracy"
goal = "max"
curve = "accuracy"
target = 0.01
model = { hidden_size = 8, num_layers = 1 }
train = { epochs = 1, lr = 1e-2, wd = 0.01, bs = 8, sl = 4 }
axes = { arch = ["lstm", "gru"], impl = ["builtin"] }
"""


def _stalled(tmp_path: Path, command: str, run_id: str) -> tuple[subprocess.Popen, Path]:
    res = tmp_path / "res"
    if command == "run":
        (tmp_path / "tiny.toml").write_text(TINY)
        args = ["--matrix", str(tmp_path / "tiny.toml"), "-q"]
    elif command == "quality":
        (tmp_path / "q.toml").write_text(QUALITY)
        args = ["--matrix", str(tmp_path / "q.toml"), "--out", str(tmp_path / "rep")]
    else:
        args = ["-k", "element", "--seeds", "0", "--out", str(tmp_path / "rep")]
    cmd = [command, *args, "--run-id", run_id, "--results-dir", str(res)]
    proc = subprocess.Popen(
        [sys.executable, "-c", STALL, *cmd], cwd=tmp_path, env=_env(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if (tmp_path / "stalled").is_file():
            return proc, res / run_id / "results.jsonl"
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"no first result: {proc.communicate()}")


def test_a_second_writer_is_refused_and_a_dead_holders_lock_is_no_obstacle(tmp_path):
    holder, results = _stalled(tmp_path, "run", "two")
    try:
        second = subprocess.run(
            [sys.executable, "-m", "bench", "run", "--matrix", str(tmp_path / "tiny.toml"),
             "--run-id", "two", "--results-dir", str(tmp_path / "res"), "-q"],
            cwd=REPO, env=_env(), capture_output=True, text=True, timeout=240,
        )  # fmt: skip
        assert second.returncode == 2, second.stderr
        assert f"being written by another process (PID {holder.pid}" in second.stderr
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    before = _ids(results)
    assert len(before) == 4 and (results.parent / ".lock").is_file()  # left by the dead
    s = run(str(tmp_path / "tiny.toml"), run_id="two", results_dir=tmp_path / "res", quiet=True)
    assert s.already_done == 4 and s.ok == CELLS - 4
    assert sorted(_ids(results)) == sorted(set(_ids(results))) and len(_ids(results)) == CELLS


@pytest.mark.parametrize("command", ["quality", "reproduce"])
def test_quality_and_reproduce_take_the_run_lock_too(tmp_path, capsys, command):
    (tmp_path / "q.toml").write_text(QUALITY)
    res, rep = str(tmp_path / "res"), str(tmp_path / "rep")
    args = {
        "quality": ["--matrix", str(tmp_path / "q.toml"), "-k", "lstm"],
        "reproduce": ["-k", "er_remember", "--seeds", "0"],
    }[command]
    with ResultStore(tmp_path / "res" / "locked").writer():  # another open file: a rival
        rc = cli.main([command, *args, "--run-id", "locked", "--results-dir", res, "--out", rep])
    assert rc == 2
    assert f"being written by another process (PID {os.getpid()}" in capsys.readouterr().err
    assert not (tmp_path / "res" / "locked" / "results.jsonl").exists()


# -- SIGTERM ---------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["run", "quality", "reproduce"])
def test_sigterm_saves_finished_cells_and_says_how_to_resume(tmp_path, command):
    proc, results = _stalled(tmp_path, command, "term")
    done = _ids(results)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "interrupted: every finished cell is saved" in err and "--run-id term" in err
    assert "Traceback" not in err
    assert _ids(results) == done  # nothing lost, nothing torn


# -- full disk, no permission ----------------------------------------------------------------
class Refuse:
    """Make writes under ``under`` fail with ``code`` after ``allow`` of them succeeded —
    at every level a writer uses: os.open/os.mkdir (EACCES), os.write/os.fsync and Python
    file objects (ENOSPC; os.write writes half first, as a disk filling up does)."""

    def __init__(self, monkeypatch, under: Path, code: int, allow: int = 0, name: str = ""):
        self.under, self.code, self.allow, self.name = str(under), code, allow, name
        real_open, real_write, real_fsync = builtins.open, os.write, os.fsync
        real_os_open, real_mkdir = os.open, os.mkdir

        def path_of(fd):
            try:
                return os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                return ""

        def fake_write(fd, data):
            if self.hit(path_of(fd)):
                real_write(fd, bytes(data[: len(data) // 2]))
                self.fail(path_of(fd))
            return real_write(fd, data)

        def fake_fsync(fd):  # fails once writes fail; counts none
            if self.matches(path_of(fd)) and self.allow < 0:
                self.fail(path_of(fd))
            return real_fsync(fd)

        def fake_open(file, mode="r", *a, **k):
            f = real_open(file, mode, *a, **k)
            if set(mode) & set("wax+") and isinstance(file, str | Path):
                return _Failing(f, self, str(Path(file).resolve()))
            return f

        def fake_os_open(path, flags, *a, **k):
            writing = flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
            if self.code == errno.EACCES and writing and self.matches(str(Path(path).resolve())):
                self.fail(str(path))
            return real_os_open(path, flags, *a, **k)

        def fake_mkdir(path, *a, **k):
            if self.code == errno.EACCES and self.matches(str(Path(path).resolve())):
                self.fail(str(path))
            return real_mkdir(path, *a, **k)

        for target, name_, fake in (
            (builtins, "open", fake_open),
            (io, "open", fake_open),
            (os, "write", fake_write),
            (os, "fsync", fake_fsync),
            (os, "open", fake_os_open),
            (os, "mkdir", fake_mkdir),
        ):
            monkeypatch.setattr(target, name_, fake)

    def matches(self, path: str) -> bool:
        return path.startswith(self.under) and self.name in os.path.basename(path)

    def hit(self, path: str) -> bool:
        if not self.matches(path):
            return False
        self.allow -= 1
        return self.allow < 0

    def fail(self, path: str):
        raise OSError(self.code, os.strerror(self.code), path)


class _Failing:
    def __init__(self, f, refuse: Refuse, path: str):
        self._f, self._refuse, self._path = f, refuse, path

    def write(self, data):
        if self._refuse.hit(self._path):
            self._refuse.fail(self._path)
        return self._f.write(data)

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._f.__exit__(*exc)

    def __iter__(self):
        return iter(self._f)


def _run_args(tiny: Path, res: Path, run_id: str) -> list[str]:
    return ["run", "--matrix", str(tiny), "--run-id", run_id, "--results-dir", str(res), "-q"]


def test_full_disk_in_the_middle_of_a_run_keeps_what_was_written(
    tiny, tmp_path, monkeypatch, capsys
):
    res = tmp_path / "res"
    refuse = Refuse(monkeypatch, res, errno.ENOSPC, allow=5, name="results.jsonl")
    assert cli.main(_run_args(tiny, res, "full")) == 1
    err = capsys.readouterr().err.strip()
    results = res / "full" / "results.jsonl"
    assert err.count("\n") == 0 and f"cannot write {results}: No space left on device" in err
    assert "--run-id full to resume" in err and "Traceback" not in err
    monkeypatch.undo()
    del refuse
    before = _ids(results)  # every line whole: the half-written one was cut back off
    assert len(before) == 5 and results.read_bytes().endswith(b"\n")
    assert _leftovers(res) == []
    s = run(str(tiny), run_id="full", results_dir=res, quiet=True)
    assert s.already_done == 5 and _ids(results)[:5] == before
    assert len(set(_ids(results))) == len(_ids(results)) == CELLS


def test_full_disk_at_the_manifest_leaves_it_whole_and_no_temporary(
    tiny, tmp_path, monkeypatch, capsys
):
    res = tmp_path / "res"
    assert cli.main([*_run_args(tiny, res, "m"), "-k", "rnn and padded"]) == 0
    manifest = (res / "m" / "run.json").read_bytes()
    Refuse(monkeypatch, res, errno.ENOSPC, name="run.json")
    assert cli.main([*_run_args(tiny, res, "m"), "-k", "rnn and packed"]) == 1
    err = capsys.readouterr().err.strip()
    assert f"cannot write {res / 'm' / 'run.json'}: No space left on device" in err
    assert err.count("\n") == 0
    monkeypatch.undo()
    assert (res / "m" / "run.json").read_bytes() == manifest and _leftovers(res) == []


def test_an_unwritable_run_directory_is_one_message(tiny, tmp_path, monkeypatch, capsys):
    res = tmp_path / "res"
    res.mkdir()
    Refuse(monkeypatch, res, errno.EACCES)
    assert cli.main(_run_args(tiny, res, "ro")) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"cannot write {res / 'ro'}" in err
    assert "Permission denied" in err


def test_full_disk_while_writing_the_report(tmp_path, monkeypatch, capsys):
    run_dir = tmp_path / "res" / "r"
    run_dir.mkdir(parents=True)
    src = (REPO / "results" / "example-cpu" / "results.jsonl").read_text().splitlines()
    (run_dir / "results.jsonl").write_text("\n".join(src[:24]) + "\n")
    out = tmp_path / "rep"
    Refuse(monkeypatch, out, errno.ENOSPC, allow=2)
    args = ["report", "r", "--results-dir", str(tmp_path / "res"), "--out", str(out)]
    assert cli.main(args) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"cannot write {out}/" in err
    assert "No space left on device" in err
    monkeypatch.undo()
    assert _leftovers(out) == []  # no temporary, no 0-byte PNG
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in out.glob("*.png"))
