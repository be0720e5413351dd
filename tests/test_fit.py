"""The one training loop: fit's mechanics, and that every task trains through it."""

from __future__ import annotations

import importlib
import math
import os
import pkgutil
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import rnnsuite.recipes.tasks
import rnnsuite.train
from rnnsuite.recipes import RECIPES
from rnnsuite.recipes.tasks import TASKS, task_model
from rnnsuite.train import fit as fit_module
from rnnsuite.train.fit import FitResult, NonFiniteLoss, Step, fit


class MSEStep(Step):
    """Mean squared error of a linear model; logs every value and the epoch's mean."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def begin_epoch(self, epoch: int) -> None:
        super().begin_epoch(epoch)
        self.epoch_values: list[float] = []

    def loss(self, model, batch):
        x, y = batch
        return ((model(x) - y) ** 2).mean()

    def after_batch(self, value, seconds):
        self.values.append(value)
        self.epoch_values.append(value)

    def end_epoch(self):
        return {"train_loss": sum(self.epoch_values) / len(self.epoch_values)}

    def evaluate(self, model, batches):
        assert not model.training and not torch.is_grad_enabled()
        return {"valid_loss": sum(self.loss(model, b).item() for b in batches)}


def regression(n: int = 64, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    return x, x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.3


def test_fit_minimises_the_steps_loss_and_returns_one_row_per_epoch():
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    x, y = regression()
    batches = [(x[i : i + 16], y[i : i + 16]) for i in range(0, 64, 16)]
    step = MSEStep()
    res = fit(
        model,
        batches,
        step,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        epochs=5,
        valid=batches[:1],
    )
    assert isinstance(res, FitResult) and res.steps == 20 and len(step.values) == 20
    assert [r["epoch"] for r in res.epochs] == [0, 1, 2, 3, 4]
    assert set(res.epochs[0]) == {"epoch", "train_loss", "valid_loss"}
    losses = [r["train_loss"] for r in res.epochs]
    assert losses == sorted(losses, reverse=True) and losses[-1] < losses[0] / 10
    assert len(res.seconds) == 5


class Clock:
    """A stand-in for fit's clock that moves only when a batch is trained or evaluated."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now

    process_time = perf_counter


def test_fit_counts_training_seconds_cumulatively_and_leaves_validation_out(monkeypatch):
    import rnnsuite.train.fit as fit_module

    clock = Clock()
    monkeypatch.setattr(fit_module, "time", clock)

    class TickingStep(MSEStep):
        def loss(self, model, batch):
            clock.now += 1.0  # one second a batch, training or validation
            return super().loss(model, batch)

        def evaluate(self, model, batches):
            clock.now += 100.0  # validation's time must not count
            return super().evaluate(model, batches)

    x, y = regression()
    batches = [(x[i : i + 16], y[i : i + 16]) for i in range(0, 64, 16)]
    model = nn.Linear(3, 1)
    res = fit(model, batches, TickingStep(), optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
              epochs=3, valid=batches[:1])  # fmt: skip
    assert res.seconds == [4.0, 8.0, 12.0]  # four batches an epoch, summed over epochs
    assert res.cpu_seconds == 12.0


def test_fit_backpropagates_the_first_loss_and_reports_the_second():
    """A step returning (minimised, reported): the optimiser follows the first, the
    non-finite check and after_batch see the second."""

    class Pair(Step):
        def __init__(self) -> None:
            self.seen: list[float] = []

        def loss(self, model, batch):
            minimised = (model.w - 3.0) ** 2
            return minimised, minimised.detach() * 0 + 7.0

        def after_batch(self, value, seconds):
            self.seen.append(value)

    model = nn.Module()
    model.w = nn.Parameter(torch.tensor(0.0))
    step = Pair()
    fit(model, [None] * 50, step, optimizer=torch.optim.SGD([model.w], lr=0.1))
    assert model.w.item() == pytest.approx(3.0, abs=1e-3)
    assert step.seen == [7.0] * 50


def test_a_non_finite_loss_raises_naming_the_epoch_and_steps_nothing():
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    x, y = regression(32)
    y[20] = math.nan  # the second batch of 16
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    batches = [(x[:16], y[:16]), (x[16:], y[16:])]
    with pytest.raises(NonFiniteLoss, match=r"non-finite loss \(nan\) at epoch 0; lower the"):
        fit(model, batches, MSEStep(), optimizer=opt)

    class Named(MSEStep):
        def where(self, epoch, batch, step):
            return f"epoch {epoch}, batch {batch}, step {step}"

    with pytest.raises(NonFiniteLoss, match=r"at epoch 1, batch 2, step 4$"):
        fit(model, lambda e: batches if e else batches[:1] * 2, Named(), optimizer=opt, epochs=2)
    y[20] = math.inf
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    with pytest.raises(NonFiniteLoss, match=r"\(inf\)"):
        fit(model, batches[1:], MSEStep(), optimizer=opt)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


@pytest.mark.parametrize("clipper", [None, nn.utils.clip_grad_norm_], ids=["d2l", "torch"])
def test_clip_bounds_the_update_of_every_step(clipper):
    """SGD with lr 1 moves the parameters by exactly the (clipped) gradient."""
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    x, y = regression(16)
    batch = (x, y * 1000)  # a gradient norm in the thousands
    kw = {} if clipper is None else {"clipper": clipper}
    for clip, bound in ((0.5, 0.5), (None, math.inf)):
        before = torch.cat([p.detach().flatten() for p in model.parameters()])
        opt = torch.optim.SGD(model.parameters(), lr=1.0)
        fit(model, [batch], MSEStep(), optimizer=opt, clip=clip, **kw)
        moved = (torch.cat([p.detach().flatten() for p in model.parameters()]) - before).norm()
        if clip is None:
            assert moved > 100
        else:
            assert moved == pytest.approx(bound, rel=1e-4)


def test_the_clipper_is_called_with_the_clip_after_backward():
    calls = []

    def clipper(params, max_norm):
        params = list(params)
        calls.append((max_norm, all(p.grad is not None for p in params)))

    model = nn.Linear(3, 1)
    x, y = regression(16)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    fit(model, [(x, y)] * 3, MSEStep(), optimizer=opt, clip=2.5, clipper=clipper, epochs=2)
    assert calls == [(2.5, True)] * 6


def _shuffled_run(seed: int) -> list[dict]:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 8), nn.Dropout(0.3), nn.Linear(8, 1))
    x, y = regression(48)
    loader = DataLoader(
        TensorDataset(x, y), 8, shuffle=True, generator=torch.Generator().manual_seed(seed)
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    return fit(model, loader, MSEStep(), optimizer=opt, epochs=3, valid=[(x, y)]).epochs


def test_same_seed_same_metrics_and_the_seed_matters():
    a, b, c = _shuffled_run(1), _shuffled_run(1), _shuffled_run(2)
    assert a == b
    assert a != c


def test_max_steps_and_an_early_stop_end_training_across_epochs():
    model = nn.Linear(3, 1)
    x, y = regression(32)
    batches = [(x[i : i + 8], y[i : i + 8]) for i in range(0, 32, 8)]
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    res = fit(model, batches, MSEStep(), optimizer=opt, epochs=5, max_steps=6)
    assert res.steps == 6 and len(res.epochs) == 2  # 4 + 2: the cut epoch still has its row

    class StopAtFive(MSEStep):
        def after_batch(self, value, seconds):
            super().after_batch(value, seconds)
            return len(self.values) == 5

    step = StopAtFive()
    res = fit(model, batches, step, optimizer=opt, epochs=5)
    assert res.steps == 5 and len(step.values) == 5 and len(res.epochs) == 2


def test_order_of_schedule_loss_reset_and_data_per_epoch():
    log: list[str] = []

    class Model(nn.Linear):
        def reset(self):
            log.append("reset-" + ("train" if self.training else "eval"))

    class Logged(MSEStep):
        def loss(self, model, batch):
            log.append("loss")
            return super().loss(model, batch)

        def evaluate(self, model, batches):
            log.append("evaluate")
            return {}

    class Schedule:
        def before_batch(self):
            log.append("schedule")

    model = Model(3, 1)
    x, y = regression(8)
    epochs_asked = []

    def data(epoch):
        epochs_asked.append(epoch)
        return [(x, y)] * 2

    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    fit(
        model, data, Logged(), optimizer=opt, epochs=2, valid=[], schedule=Schedule(), stateful=True
    )
    epoch = ["reset-train", "schedule", "loss", "schedule", "loss", "reset-eval", "evaluate"]
    assert log == epoch * 2 and epochs_asked == [0, 1]


# -- every task trains through fit -------------------------------------------------------------
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TINY = {"epochs": 1, "max_batches": 2, "test_batches": 1, "valid_batches": 1}
TINY.update(num_train=64, num_val=16)
PTB_CELL = (
    {"arch": "lstm", "impl": "scratch", "hidden_size": 8, "num_layers": 1},
    {"bs": 4, "bptt": 5, "epochs": 1, "lr": 3e-3, "wd": 0.01},
)
NEEDS = {
    "ag_news": "ag_news/test.csv",
    "ptb": "ptb/ptb.train.txt",
    "time_machine": "time_machine/timemachine.txt",
    "translation": "fra_eng/fra.txt",
    "word2vec": "time_machine/timemachine.txt",
    "agnews_w2v": "ptb/ptb.train.txt",
    "tv_script": "seinfeld/Seinfeld_Scripts.txt",
}
NOTHING_TRAINED = {"remember"}  # the tutorial's remember/forget observations: no optimiser


def _data_root() -> Path | None:
    env = os.environ.get("RNNSUITE_DATA")
    return Path(env.split(os.pathsep)[0]) if env else (SHARED if SHARED.is_dir() else None)


@pytest.fixture
def fit_calls(monkeypatch):
    """Replace fit in every rnnsuite module that imported it (all of rnnsuite.train and
    rnnsuite.recipes imported first) by a spy that records the step's class and the
    steps taken, and trains as fit does."""
    for package in (rnnsuite.train, rnnsuite.recipes, rnnsuite.recipes.tasks):
        for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
            importlib.import_module(info.name)  # the tasks import some lazily
    real, calls = fit_module.fit, []

    def spy(model, data, step, **kw):
        res = real(model, data, step, **kw)
        calls.append((type(step).__name__, res.steps))
        return res

    for name, module in list(sys.modules.items()):
        if name.startswith("rnnsuite") and getattr(module, "fit", None) is real:
            monkeypatch.setattr(module, "fit", spy)
    return calls


def _task_settings(task: str) -> tuple[dict, dict]:
    """A cell of the quality matrix for ptb (no recipe trains it), else the task's first
    recipe (agnews_w2v: the word2vec-initialised arm, which trains the vectors too)."""
    if task == "ptb":
        return PTB_CELL
    specs = [s for s in RECIPES.values() if s["task"] == task]
    if task == "agnews_w2v":
        specs = [s for s in specs if s["model"]["embed_init"] == "word2vec"]
    return dict(specs[0]["model"]), dict(specs[0]["train"])


@pytest.mark.parametrize("task", sorted(set(TASKS) - NOTHING_TRAINED))
def test_every_task_trains_through_fit(task, fit_calls, tmp_path, monkeypatch):
    monkeypatch.setenv("RNNSUITE_CACHE", str(tmp_path / "cache"))  # word2vec trained, not read
    root = _data_root()
    need = NEEDS.get(task)
    if need and (root is None or not (root / need).exists()):
        pytest.skip(f"{need} not found (set RNNSUITE_DATA)")
    model_cfg, train_cfg = _task_settings(task)
    TASKS[task](model_cfg, train_cfg, seed=0, device="cpu", limits=TINY, root=root)
    assert fit_calls, f"task {task} trained without fit"
    assert all(steps > 0 for _, steps in fit_calls)
    if task == "agnews_w2v":  # the vectors and the classifier: both through fit
        assert [name for name, _ in fit_calls] == ["SkipGramStep", "ClassifyStep"]


def test_the_recipes_use_only_known_tasks_and_every_trained_one_is_checked():
    assert {s["task"] for s in RECIPES.values()} <= set(TASKS)
    assert set(TASKS) >= NOTHING_TRAINED


# -- the one place that picks a task's model ---------------------------------------------------
def test_task_model_swaps_in_the_transformer_for_each_kind_it_has():
    from rnnsuite.models import CharLM, TextClassifier, WordLM
    from rnnsuite.models.transformer import TransformerCharLM, TransformerClassifier, TransformerLM

    rnn = {"arch": "gru", "impl": "builtin", "hidden_size": 8, "num_layers": 1, "embed_dim": 8}
    rnn["readout"] = "last"
    tf = {**rnn, "arch": "transformer", "num_heads": 2}
    cases = [
        ("classifier", {"vocab_size": 10, "num_classes": 3}, TextClassifier, TransformerClassifier),
        ("word_lm", {"vocab_size": 10}, WordLM, TransformerLM),
        ("char_lm", {"vocab_size": 10, "window": 4}, CharLM, TransformerCharLM),
    ]
    for kind, dims, rnn_type, tf_type in cases:
        assert type(task_model(kind, rnn, **dims)) is rnn_type
        assert type(task_model(kind, tf, **dims)) is tf_type
    with pytest.raises(ValueError, match="no Transformer model for task kind 'seq2seq'"):
        task_model("seq2seq", tf, src_vocab_size=5, tgt_vocab_size=5)
    with pytest.raises(ValueError, match="task kind 'nope'"):
        task_model("nope", rnn)


def test_no_file_branches_on_an_architecture_name():
    """The registry record is the only place that knows an architecture: no module of the
    library (but the registry and the native kernels' dispatch on their own loop names)
    and none of the bench compares a value with an architecture's name."""
    import re

    root = Path(rnnsuite.__file__).parent
    names = "|".join(rnnsuite.architectures())
    branch = re.compile(rf"""(==|!=)\s*["']({names})["']|["']({names})["']\s*(==|!=)""")
    files = [*root.rglob("*.py"), *(root.parent / "bench").rglob("*.py")]
    skip = {root / "registry.py", root / "native" / "sequence.py"}
    naming = [str(f) for f in files if f not in skip and branch.search(f.read_text())]
    assert naming == []
