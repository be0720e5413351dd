"""Executors: where a study's units run. The driver (study/execute.py ``drive``) stays the
only writer of the results store; an executor only hands each unit's records back.

- ``local`` (LocalExecutor): one unit after another in this process.
- ``ray`` (RayExecutor, ``pip install "rnnsuite[ray]"``): units as Ray tasks.
  *Timing never shares a machine*: Ray's resources are bookkeeping only, so every
  timing unit asks for the whole of a custom node resource, ``rnnsuite_node`` — nodes
  started for benchmarking carry one (``ray start --resources '{"rnnsuite_node": 1}'``),
  and a cluster started here (``--ray-address local``) carries one, so its timing units
  run one at a time. Inside a timing task torch's threads are set to the node's cores
  (a cell's own ``threads`` still wins: measure.py), since Ray sets OMP_NUM_THREADS to
  the task's CPUs and reused workers keep stale settings (ray-project/ray#35937).
  *Training units* are independent and deterministic: one per CPU at one torch thread
  each (one per GPU on CUDA). A task whose worker or node dies is retried once by Ray; if it dies again, each
  of its cells is recorded failed with the reason. Ctrl-C cancels what is still
  outstanding; what finished is already written.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .source import StudyError

NODE_RESOURCE = "rnnsuite_node"
INSTALL = 'pip install "rnnsuite[ray]"'


class LocalExecutor:
    """Run each unit here, one after another (timing never shares the machine)."""

    name = "local"

    def activity(self) -> str:
        """What progress shows of the executor: nothing, here (one unit at a time)."""
        return ""

    def map(self, execute: Callable, units: Iterable) -> Iterator[tuple[Any, list[dict]]]:
        for unit in units:
            yield unit, execute(unit)


def _ray():
    try:
        import ray
    except ImportError:
        raise StudyError(f"--executor ray needs Ray, which is not installed: {INSTALL}") from None
    return ray


def _suite_env() -> dict[str, str]:
    """The RNNSUITE_* variables here (data path, native switch, injections), for workers."""
    return {k: v for k, v in os.environ.items() if k.startswith("RNNSUITE_")}


def _run_unit(execute: Callable, unit, timing: bool, env: dict[str, str]):
    """Inside a Ray worker: the thread count and the injections, then the unit."""
    import torch

    for key in [k for k in os.environ if k.startswith("RNNSUITE_") and k not in env]:
        del os.environ[key]  # a reused worker keeps what an earlier task set
    os.environ.update(env)
    torch.set_num_threads((os.cpu_count() or 1) if timing else 1)
    return execute(unit)


class RayExecutor:
    """Units as Ray tasks (see the module docstring); ``failed(cell, reason)`` makes the
    record of a cell whose task died twice."""

    name = "ray"

    def __init__(
        self,
        address: str = "local",
        *,
        timing: bool,
        failed: Callable[[Any, str], dict],
        device: str = "cpu",
    ) -> None:
        self.ray = _ray()
        self.address, self.timing, self.failed = address, timing, failed
        self.gpu = device.startswith("cuda")
        self.in_flight = 0  # tasks submitted and not yet back
        self.slots = 1  # how many of them the cluster runs at once
        self._started = False

    def activity(self) -> str:
        """Tasks running and queued (Ray runs as many as the cluster has slots for)."""
        if not self.in_flight:
            return ""
        running = min(self.in_flight, self.slots)
        return f"{running} running, {self.in_flight - running} queued"

    def _init(self) -> None:
        ray = self.ray
        if not ray.is_initialized():
            kw: dict[str, Any] = {"runtime_env": {"env_vars": _suite_env()}, "log_to_driver": False}
            if self.address == "local":
                kw.update(resources={NODE_RESOURCE: 1}, include_dashboard=False)
            else:
                kw["address"] = self.address
            try:
                ray.init(**kw)
            except ConnectionError as e:
                raise StudyError(
                    f"--ray-address {self.address}: no Ray cluster there ({e}); start one "
                    "(bench/README.md, 'Scale out') or use --ray-address local"
                ) from None
            self._started = True
        if self.timing and not ray.cluster_resources().get(NODE_RESOURCE):
            raise StudyError(
                f"the Ray cluster at {self.address} has no node with the {NODE_RESOURCE!r} "
                "resource: start each benchmarking node with "
                f"`ray start --address HEAD:6379 --resources '{{\"{NODE_RESOURCE}\": 1}}'`"
            )

    def task_options(self) -> tuple[dict[str, Any], str]:
        """Ray options of one task, and the resource that bounds how many run at once: a
        timing group holds a whole benchmarking node; a training cell one CPU, or one GPU
        (and a CPU) when the cells run on CUDA."""
        options: dict[str, Any] = {"max_retries": 1, "retry_exceptions": False}
        if self.timing:
            return {**options, "num_cpus": 0, "resources": {NODE_RESOURCE: 1}}, NODE_RESOURCE
        if self.gpu:
            return {**options, "num_cpus": 1, "num_gpus": 1}, "GPU"
        return {**options, "num_cpus": 1}, "CPU"

    def map(self, execute: Callable, units: Iterable) -> Iterator[tuple[Any, list[dict]]]:
        ray = self.ray
        self._init()
        options, slot = self.task_options()
        task = ray.remote(_run_unit).options(**options)
        env = _suite_env()  # as of now, for each task (a reused worker has older ones)
        fn = ray.put(execute)
        pending = {task.remote(fn, u, self.timing, env): u for u in units}
        self.slots = max(1, int(ray.cluster_resources().get(slot, 1)))
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                unit = pending.pop(done[0])
                self.in_flight = len(pending)
                try:
                    records = ray.get(done[0])
                except (ray.exceptions.RayTaskError, ray.exceptions.WorkerCrashedError,
                        ray.exceptions.NodeDiedError, ray.exceptions.RaySystemError) as e:  # fmt: skip
                    why = f"worker died (retried once): {type(e).__name__}: {str(e)[:300]}"
                    records = [self.failed(cell, why) for cell in unit.cells]
                yield unit, records
        finally:
            for ref in pending:  # Ctrl-C or an error: cancel what has not finished
                ray.cancel(ref, force=True)
            self.in_flight = 0

    def close(self) -> None:
        if self._started and self.ray.is_initialized():
            self.ray.shutdown()


def make(name: str, *, address: str = "local", timing: bool, failed, device: str = "cpu") -> Any:
    """The executor a command asked for: ``local`` or ``ray``."""
    if name == "local":
        return LocalExecutor()
    if name == "ray":
        return RayExecutor(address, timing=timing, failed=failed, device=device)
    raise StudyError(f"--executor {name!r}: choose local or ray")
