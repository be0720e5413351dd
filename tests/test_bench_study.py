"""The study protocol's shared pieces: one matrix-file reader, one error type."""

from __future__ import annotations

import pytest

from bench.quality import study as quality
from bench.reproduce import study as reproduce
from bench.study import StudyError
from bench.throughput.matrix import MatrixError, load


@pytest.mark.parametrize(
    "read", [load, quality.load_matrix, reproduce.load_matrix], ids=["run", "quality", "reproduce"]
)
def test_every_kind_reads_a_matrix_file_the_same_way(tmp_path, read):
    bad = tmp_path / "bad.toml"
    bad.write_text("kind = ")
    with pytest.raises(StudyError, match=r"bad\.toml: not valid TOML"):
        read(str(bad))
    with pytest.raises(StudyError, match=r"absent\.toml: no such matrix file"):
        read(str(tmp_path / "absent.toml"))


def test_the_kinds_errors_are_one_type():
    assert issubclass(MatrixError, StudyError)
    assert issubclass(quality.QualityError, StudyError)
    assert issubclass(StudyError, ValueError)  # callers that caught ValueError still do
