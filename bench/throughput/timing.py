"""The interleaved timer: variants that get compared run ABAB… in one process.

Each repeat times every variant once per mode, in an order rotated from
repeat to repeat (so no variant always runs first, right after the last one's
caches), with CUDA synchronised around each call. Ratios are taken per repeat
(variant A's time in repeat r against B's in the same repeat) and then the
median of those ratios is reported: a slow patch of the machine hits both
sides of a pair alike and cancels out.

A sample is a block of consecutive calls of one variant, as many as fill
``block_s`` by the variant's last warm-up call (one call where that is already
longer, or with no warm-up), and its time is the block's divided by its calls —
what torch.utils.benchmark's blocked_autorange and timeit do. A lone call right
after the other variants measures refilling the caches they evicted as much as
the call itself: measured here (AMD EPYC, one thread) at AG News' LSTM training
step (1.3 ms), an 8 MB sweep before each call added 0.33 ms to the scratch
step and 0.23 ms to nn.LSTM's, turning 1.02x into 0.96x. A model in a training
loop runs call after call; the block's first call still pays the switch.

``RNNSUITE_BENCH_INJECT_SLOWDOWN="scratch:0.25"`` (comma-separated
``impl:fraction``) makes every timed call of that implementation take that
fraction longer, by spinning after the call for fraction × its own duration.
It exists to prove the regression gate catches a slowdown; every result
records the injection in force.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

INJECT_ENV = "RNNSUITE_BENCH_INJECT_SLOWDOWN"


def injection_from_env(env: dict[str, str] | None = None) -> dict[str, float]:
    """Parse RNNSUITE_BENCH_INJECT_SLOWDOWN; raises ValueError on a malformed value."""
    text = (env if env is not None else os.environ).get(INJECT_ENV, "").strip()
    out: dict[str, float] = {}
    if not text:
        return out
    for part in text.split(","):
        impl, sep, frac = part.strip().partition(":")
        try:
            value = float(frac)
        except ValueError:
            value = -1.0
        if not sep or not impl or not 0.0 < value <= 10.0:
            raise ValueError(
                f"{INJECT_ENV}={text!r}: expected impl:fraction pairs like 'scratch:0.25'"
            )
        out[impl] = value
    return out


def _sync(device: str) -> Callable[[], None]:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.synchronize
    if device == "mps":
        import torch

        return torch.mps.synchronize
    return lambda: None


@dataclass
class Timer:
    device: str = "cpu"
    inject: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.sync = _sync(self.device)

    def __call__(self, fn: Callable[[], object], impl: str = "") -> float:
        sync, clock = self.sync, time.perf_counter
        sync()
        t0 = clock()
        fn()
        sync()
        t = clock() - t0
        frac = self.inject.get(impl)
        if frac:
            until = t0 + t * (1.0 + frac)
            while clock() < until:
                pass
            t = clock() - t0
        return t

    def overhead(self, calls: int = 2000) -> float:
        """Median cost of timing a call that does nothing (the harness's own share)."""
        noop = lambda: None  # noqa: E731
        samples = [self(noop) for _ in range(calls)]
        return float(statistics.median(samples))


@dataclass
class Variant:
    """One thing to time: a name, its implementation (for injection), a callable per mode."""

    name: str
    impl: str
    calls: dict[str, Callable[[], object]]
    times: dict[str, list[float]] = field(default_factory=dict)
    error: BaseException | None = None
    #: calls in each timed sample, per mode (set after the warm-up; see interleave)
    calls_per_sample: dict[str, int] = field(default_factory=dict)


MIN_REPEATS = 3
#: the most calls one sample holds, however short a call
MAX_CALLS_PER_SAMPLE = 1000


def calls_for(block_s: float, call_s: float) -> int:
    """Calls of ``call_s`` seconds that fill a block of ``block_s`` (at least one)."""
    if block_s <= 0 or call_s >= block_s:
        return 1
    if call_s <= 0:
        return MAX_CALLS_PER_SAMPLE
    return max(1, min(MAX_CALLS_PER_SAMPLE, math.ceil(block_s / call_s)))


def _block(fn: Callable[[], object], n: int) -> Callable[[], object]:
    if n == 1:
        return fn

    def run() -> None:
        for _ in range(n):
            fn()

    return run


def interleave(
    variants: list[Variant],
    *,
    modes: tuple[str, ...],
    warmup: int,
    repeats: int,
    timer: Timer,
    budget_s: float = 0.0,
    block_s: float = 0.0,
    clock: Callable[[], float] = time.perf_counter,
) -> int:
    """Time all variants interleaved; fills ``v.times[mode]`` (seconds a call) and returns
    the number of timed repeats. A variant that raises gets ``v.error`` set and leaves the
    rotation; the others go on. With ``budget_s`` > 0 the loop stops early once that many
    seconds have passed and at least MIN_REPEATS repeats are in (a loaded machine then
    costs precision, not wall time); the caller records the shortfall. With ``block_s`` > 0
    each timed sample is a block of calls (see the module docstring), their number fixed
    per variant and mode by its last warm-up call and kept in ``v.calls_per_sample``."""
    for v in variants:
        for mode in v.calls:
            v.times.setdefault(mode, [])
            v.calls_per_sample[mode] = 1
    start = clock()
    done = 0
    for r in range(warmup + repeats):
        if budget_s > 0 and r >= warmup + min(MIN_REPEATS, repeats) and clock() - start > budget_s:
            break
        for mode in modes:
            live = [v for v in variants if v.error is None and mode in v.calls]
            if not live:
                continue
            k = r % len(live)
            for v in live[k:] + live[:k]:
                n = v.calls_per_sample[mode]
                try:
                    t = timer(_block(v.calls[mode], n), v.impl) / n
                except Exception as e:  # recorded by the caller as a failed cell
                    v.error = e
                    continue
                if r >= warmup:
                    v.times[mode].append(t)
                elif r == warmup - 1:  # the last warm-up call sets the block
                    v.calls_per_sample[mode] = calls_for(block_s, t)
        if r >= warmup:
            done += 1
    return done


def summary(times: list[float]) -> dict[str, float]:
    """Median, quartiles, IQR relative to the median, min and max of a sample."""
    a = np.asarray(times, dtype=float)
    q1, med, q3 = np.percentile(a, [25, 50, 75])
    return {
        "n": len(times),
        "median_s": float(med),
        "q1_s": float(q1),
        "q3_s": float(q3),
        "iqr_rel": float((q3 - q1) / med) if med > 0 else 0.0,
        "min_s": float(a.min()),
        "max_s": float(a.max()),
    }


def pair_ratio(reference: list[float], variant: list[float]) -> dict[str, float] | None:
    """Throughput of ``variant`` relative to ``reference``, per repeat pair: ref_t / var_t.

    > 1 means the variant is faster. Median and quartiles over the pairs.
    """
    n = min(len(reference), len(variant))
    if n == 0:
        return None
    r = np.asarray(reference[:n]) / np.asarray(variant[:n])
    q1, med, q3 = np.percentile(r, [25, 50, 75])
    return {"median": float(med), "q1": float(q1), "q3": float(q3), "n": n}
