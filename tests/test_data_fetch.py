"""Locating, verifying and downloading dataset files; bad inputs; the processed cache; the CLI.

Downloads are exercised for real against an HTTP server on 127.0.0.1 started here."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from rnnsuite.data import (
    ChecksumMismatch,
    DataError,
    DatasetMissing,
    DownloadError,
    MalformedData,
    download_file,
    load_ag_news,
    locate,
    read_ag_news_csv,
    sources,
)
from rnnsuite.data.__main__ import main as cli
from rnnsuite.data.cache import load_or_build, processed_dir
from rnnsuite.data.fetch import download_dataset, locate_info
from rnnsuite.data.sources import DatasetSpec, FileSpec

REPO = Path(__file__).resolve().parents[1]

GOOD = b"the quick brown fox\n" * 500
GOOD_SHA = hashlib.sha256(GOOD).hexdigest()
GOOD_MD5 = hashlib.md5(GOOD).hexdigest()


def shared_data_dir() -> Path | None:
    """RNNSUITE_DATA if set, else <repo>/../shared/data when it exists."""
    env = os.environ.get("RNNSUITE_DATA")
    if env:
        return Path(env.split(os.pathsep)[0])
    shared = REPO.parent / "shared" / "data"
    return shared if shared.is_dir() else None


SHARED = shared_data_dir()


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """Cache in tmp_path (never the home directory), no data dir, downloads off."""
    monkeypatch.setenv("RNNSUITE_CACHE", str(tmp_path / "cache"))
    for var in ("RNNSUITE_DATA", "RNNSUITE_DOWNLOAD", "RNNSUITE_MIRROR", "RNNSUITE_NO_CACHE"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def cache(tmp_path) -> Path:
    return tmp_path / "cache"


def files_under(root: Path) -> list[str]:
    return (
        sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
        if root.exists()
        else []
    )


def member_zip(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(name, data)
    return buf.getvalue()


ZIP = member_zip("toy/inner.txt", GOOD)


@pytest.fixture
def toy(monkeypatch) -> DatasetSpec:
    """A small registered dataset whose files this test's server can serve."""
    spec = DatasetSpec(
        "toy",
        "toy dataset for the tests",
        (
            FileSpec(
                "toy", "good.txt", size=len(GOOD), sha256=GOOD_SHA, url="http://127.0.0.1:9/x"
            ),
            FileSpec("toy", "md5only.txt", md5=GOOD_MD5, url="http://127.0.0.1:9/y"),
            FileSpec("toy", "local_only.txt", sha256=GOOD_SHA),
            FileSpec(
                "toy", "toy.zip", sha256=hashlib.sha256(ZIP).hexdigest(), url="http://127.0.0.1:9/z"
            ),
            FileSpec(
                "toy", "inner.txt", sha256=GOOD_SHA, archive="toy.zip", member="toy/inner.txt"
            ),
        ),
    )
    monkeypatch.setitem(sources.DATASETS, "toy", spec)
    return spec


class Server:
    """Serves routes from a dict: path -> (status, body, announced length or None)."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, bytes, int | None]] = {}
        self.hits: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits.append(self.path)
                status, body, announced = outer.routes.get(self.path, (404, b"not found", None))
                self.send_response(status)
                self.send_header(
                    "Content-Length", str(len(body) if announced is None else announced)
                )
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()
                self.close_connection = True

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.close()


# --------------------------------------------------------------------------- locating


def test_missing_file_message_names_file_env_var_and_download_command(toy, cache):
    with pytest.raises(DatasetMissing) as exc:
        locate("toy", "good.txt")
    msg = str(exc.value)
    assert "toy/good.txt" in msg and "RNNSUITE_DATA" in msg
    assert "python -m rnnsuite.data download toy" in msg
    assert isinstance(exc.value, DataError) and isinstance(exc.value, FileNotFoundError)
    assert files_under(cache) == []


def test_missing_file_without_url_says_it_cannot_be_downloaded(toy):
    with pytest.raises(DatasetMissing, match="no public download URL"):
        locate("toy", "local_only.txt")


def test_search_order_explicit_then_env_then_cache(toy, tmp_path, monkeypatch, cache):
    for d in ("explicit", "env", "cache"):
        base = cache if d == "cache" else tmp_path / d
        (base / "toy").mkdir(parents=True)
        (base / "toy" / "good.txt").write_bytes(GOOD)
    monkeypatch.setenv("RNNSUITE_DATA", str(tmp_path / "env"))
    assert locate("toy", "good.txt", root=tmp_path / "explicit").parent.parent.name == "explicit"
    assert locate_info("toy", "good.txt").origin == "RNNSUITE_DATA"
    monkeypatch.delenv("RNNSUITE_DATA")
    found = locate_info("toy", "good.txt")
    assert found.origin == "cache" and found.verified == "sha256"
    # an explicit root may also be the dataset directory itself
    assert locate("toy", "good.txt", root=tmp_path / "explicit" / "toy").is_file()


def test_a_file_with_the_wrong_checksum_is_refused_with_both_checksums(toy, tmp_path, monkeypatch):
    bad = GOOD.replace(b"fox", b"cat")
    (tmp_path / "data" / "toy").mkdir(parents=True)
    (tmp_path / "data" / "toy" / "good.txt").write_bytes(bad)
    monkeypatch.setenv("RNNSUITE_DATA", str(tmp_path / "data"))
    with pytest.raises(ChecksumMismatch) as exc:
        locate("toy", "good.txt")
    msg = str(exc.value)
    assert GOOD_SHA in msg and hashlib.sha256(bad).hexdigest() in msg
    assert locate("toy", "good.txt", verify=False).is_file()  # explicit opt-out still works


def test_md5_is_used_when_no_sha256_is_known(toy, tmp_path):
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "md5only.txt").write_bytes(GOOD)
    assert locate_info("toy", "md5only.txt", root=tmp_path).verified == "md5"
    (tmp_path / "toy" / "md5only.txt").write_bytes(GOOD + b"!")
    with pytest.raises(ChecksumMismatch, match=f"expected md5 {GOOD_MD5}, got md5 "):
        locate("toy", "md5only.txt", root=tmp_path)


def test_member_is_extracted_from_the_archive_into_the_cache(toy, tmp_path, cache):
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "toy.zip").write_bytes(ZIP)
    found = locate_info("toy", "inner.txt", root=tmp_path)
    assert found.origin == "extracted" and found.path == cache / "toy" / "inner.txt"
    assert found.path.read_bytes() == GOOD
    assert locate_info("toy", "inner.txt").origin == "cache"  # found directly next time


def test_archive_member_with_wrong_content_leaves_nothing(toy, tmp_path, cache, monkeypatch):
    wrong = member_zip("toy/inner.txt", b"tampered")
    patched = FileSpec("toy", "toy.zip", sha256=hashlib.sha256(wrong).hexdigest())
    files = tuple(patched if f.filename == "toy.zip" else f for f in toy.files)
    monkeypatch.setitem(sources.DATASETS, "toy", DatasetSpec("toy", "toy", files))
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "toy.zip").write_bytes(wrong)
    with pytest.raises(ChecksumMismatch, match=GOOD_SHA):
        locate("toy", "inner.txt", root=tmp_path)
    assert files_under(cache) == []


def test_missing_archive_member_names_the_archive_too(toy):
    with pytest.raises(DatasetMissing, match=r"(?s)toy/inner\.txt.*archive toy/toy\.zip"):
        locate("toy", "inner.txt")


# --------------------------------------------------------------------------- downloading


def test_download_good_file_lands_in_the_cache_verified(toy, server, cache):
    server.routes["/toy/good.txt"] = (200, GOOD, None)
    found = locate_info("toy", "good.txt", download=True, mirror=server.url)
    assert found.origin == "downloaded" and found.path == cache / "toy" / "good.txt"
    assert found.path.read_bytes() == GOOD
    assert files_under(cache) == ["toy/good.txt"]  # no temporary file left
    assert locate_info("toy", "good.txt").origin == "cache"  # offline from now on


def test_downloads_are_opt_in(toy, server, monkeypatch):
    server.routes["/toy/good.txt"] = (200, GOOD, None)
    monkeypatch.setenv("RNNSUITE_MIRROR", server.url)
    with pytest.raises(DatasetMissing):
        locate("toy", "good.txt")
    assert server.hits == []
    monkeypatch.setenv("RNNSUITE_DOWNLOAD", "1")
    assert locate("toy", "good.txt").read_bytes() == GOOD
    assert server.hits == ["/toy/good.txt"]


def test_download_with_wrong_checksum_is_refused_and_not_kept(toy, server, cache):
    bad = GOOD[:-1] + b"?"
    server.routes["/toy/good.txt"] = (200, bad, None)
    with pytest.raises(ChecksumMismatch) as exc:
        locate("toy", "good.txt", download=True, mirror=server.url)
    assert GOOD_SHA in str(exc.value) and hashlib.sha256(bad).hexdigest() in str(exc.value)
    assert files_under(cache) == []


def test_truncated_transfer_is_an_error_and_leaves_nothing(toy, server, cache):
    server.routes["/toy/good.txt"] = (200, GOOD[:1000], len(GOOD))
    with pytest.raises(DownloadError, match=r"truncated|IncompleteRead|1,000"):
        locate("toy", "good.txt", download=True, mirror=server.url)
    assert files_under(cache) == []


def test_server_error_is_reported_with_the_status(toy, server, cache):
    server.routes["/toy/good.txt"] = (500, b"boom", None)
    with pytest.raises(DownloadError, match="HTTP 500"):
        locate("toy", "good.txt", download=True, mirror=server.url)
    assert files_under(cache) == []


def test_download_file_without_a_spec_just_transfers(server, tmp_path):
    server.routes["/plain"] = (200, b"abc", None)
    dest = download_file(f"{server.url}/plain", tmp_path / "sub" / "plain.bin")
    assert dest.read_bytes() == b"abc" and files_under(tmp_path / "sub") == ["plain.bin"]


def test_download_dataset_fetches_and_extracts_then_skips_verified_copies(toy, server, cache):
    server.routes.update(
        {
            "/toy/good.txt": (200, GOOD, None),
            "/toy/md5only.txt": (200, GOOD, None),
            "/toy/toy.zip": (200, ZIP, None),
        }
    )
    found = download_dataset("toy", mirror=server.url)
    assert {f.spec.filename: f.origin for f in found} == {
        "good.txt": "downloaded",
        "md5only.txt": "downloaded",
        "toy.zip": "downloaded",
        "inner.txt": "extracted",
    }
    assert files_under(cache) == ["toy/good.txt", "toy/inner.txt", "toy/md5only.txt", "toy/toy.zip"]
    server.hits.clear()
    again = download_dataset("toy", mirror=server.url)
    assert server.hits == [] and {f.origin for f in again} == {"cache"}


def test_real_registry_entry_downloads_through_a_mirror(server, cache):
    """The Time Machine's registry checksum accepts the real file served over HTTP."""
    if SHARED is None or not (SHARED / "time_machine" / "timemachine.txt").is_file():
        pytest.skip("time_machine/timemachine.txt absent: set RNNSUITE_DATA to the shared data")
    body = (SHARED / "time_machine" / "timemachine.txt").read_bytes()
    server.routes["/time_machine/timemachine.txt"] = (200, body, None)
    path = locate("time_machine", "timemachine.txt", download=True, mirror=server.url)
    assert path == cache / "time_machine" / "timemachine.txt" and path.read_bytes() == body


# --------------------------------------------------------------------------- malformed CSV


def write_ag_dir(tmp_path: Path, train: str, test: str) -> Path:
    d = tmp_path / "agroot" / "ag_news"
    d.mkdir(parents=True)
    (d / "train.csv").write_text(train)
    (d / "test.csv").write_text(test)
    return tmp_path / "agroot"


GOOD_ROWS = '"3","Title one","Desc one."\n"1","T2","D2"\n'


def test_csv_row_with_wrong_field_count_names_file_and_line(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text(GOOD_ROWS + '"2","only title"\n')
    with pytest.raises(MalformedData, match=r"x\.csv, line 3: expected 3 fields.*got 2"):
        read_ag_news_csv(path)


def test_csv_row_with_bad_label_names_file_and_line(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text('"5","t","d"\n' + GOOD_ROWS)
    with pytest.raises(MalformedData, match=r"x\.csv, line 1: label must be 1\.\.4, got '5'"):
        read_ag_news_csv(path)


def test_csv_with_broken_quoting_names_file_and_line(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text(GOOD_ROWS + '"2","bad"quote","d"\n')
    with pytest.raises(MalformedData, match=r"x\.csv, line 3: CSV error"):
        read_ag_news_csv(path)


def test_csv_that_is_not_utf8_names_file_and_line(tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes(GOOD_ROWS.encode() + b'"2","caf\xe9","d"\n')
    with pytest.raises(MalformedData, match=r"x\.csv, line 3: not UTF-8"):
        read_ag_news_csv(path)


def test_malformed_train_csv_through_the_loader_leaves_no_cache_file(tmp_path, cache):
    root = write_ag_dir(tmp_path, GOOD_ROWS + '"2"\n', GOOD_ROWS)
    with pytest.raises(MalformedData, match=r"train\.csv, line 3"):
        load_ag_news(root, verify=False)
    assert files_under(cache) == []


def test_full_train_csv_gives_a_complete_dataset_without_note(tmp_path):
    root = write_ag_dir(tmp_path, GOOD_ROWS, '"4","Test","row"\n')
    with pytest.raises(ChecksumMismatch):  # a toy train.csv is not the real one
        load_ag_news(root)
    ag = load_ag_news(root, verify=False)
    assert not ag.partial and ag.note is None and ag.train.note is None
    assert ag.train[0] == (2, "Title one Desc one.") and ag.test[0] == (3, "Test row")


# --------------------------------------------------------------------------- processed cache


def test_processed_cache_builds_once_and_rebuilds_a_corrupt_file(cache):
    calls = []

    def build():
        calls.append(1)
        return {"ids": torch.arange(5), "itos": ["a", "b"]}

    key = {"format": 1, "sha256": "abc"}
    first = load_or_build("unit", key, build)
    second = load_or_build("unit", key, build)
    assert (
        len(calls) == 1
        and torch.equal(second["ids"], first["ids"])
        and second["itos"] == ["a", "b"]
    )
    (entry,) = processed_dir().iterdir()
    assert entry.parent == cache / "processed" and entry.name.startswith("unit-")
    entry.write_bytes(b"garbage")
    assert (
        torch.equal(load_or_build("unit", key, build)["ids"], torch.arange(5)) and len(calls) == 2
    )
    load_or_build("unit", {**key, "sha256": "abd"}, build)
    assert len(calls) == 3 and len(list(processed_dir().iterdir())) == 2


def test_processed_cache_can_be_switched_off(monkeypatch, cache):
    monkeypatch.setenv("RNNSUITE_NO_CACHE", "1")
    load_or_build("unit", {"k": 1}, lambda: {"x": torch.zeros(1)})
    assert files_under(cache) == []


# --------------------------------------------------------------------------- CLI


def test_cli_list_shows_each_dataset_where_and_whether_it_verified(tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    (data / "ptb").mkdir(parents=True)
    fake = b"not the real file\n"
    (data / "ptb" / "ptb.valid.txt").write_bytes(fake)
    monkeypatch.setenv("RNNSUITE_DATA", str(data))
    assert cli(["list"]) == 0
    out = capsys.readouterr().out
    for name in sources.DATASETS:
        assert f"\n{name}: " in out
    assert "ptb.train.txt" in out and "missing" in out
    assert f"MISMATCH sha256 {hashlib.sha256(fake).hexdigest()}" in out
    assert "expected c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2" in out
    assert cli(["verify", "ptb"]) == 1
    assert cli(["verify", "time_machine"]) == 1  # a missing required file fails...
    assert cli(["verify", "time_machine", "--report-only"]) == 0  # ...unless only reporting
    assert cli(["verify", "ptb", "--report-only"]) == 0


def test_cli_download_uses_the_mirror(toy, server, cache, capsys):
    server.routes.update(
        {
            "/toy/good.txt": (200, GOOD, None),
            "/toy/md5only.txt": (200, GOOD, None),
            "/toy/toy.zip": (200, ZIP, None),
        }
    )
    assert cli(["download", "toy", "--mirror", server.url]) == 0
    assert "toy/inner.txt: extracted" in capsys.readouterr().out
    server.routes["/toy/good.txt"] = (500, b"", None)
    assert cli(["download", "toy", "--mirror", server.url, "--force"]) == 1
    assert "HTTP 500" in capsys.readouterr().err


def test_cli_runs_as_a_module_on_the_shared_data():
    if SHARED is None or not (SHARED / "time_machine" / "timemachine.txt").is_file():
        pytest.skip("time_machine/timemachine.txt absent: set RNNSUITE_DATA to the shared data")
    env = {**os.environ, "RNNSUITE_DATA": str(SHARED)}
    proc = subprocess.run(
        [sys.executable, "-m", "rnnsuite.data", "list"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "timemachine.txt" in proc.stdout and "ok (sha256)" in proc.stdout
    if (SHARED / "ag_news" / "train_partial.csv").is_file():
        assert "partial: 10,429 of 120,000 rows" in proc.stdout
