"""Assemble ``OUT_DIR/cuda-check/`` from a run's work directory (after every step).

summary.md, env.json, steps.jsonl, results.jsonl (the matrix), recipes.jsonl, log.txt and
cuda-check.tar.gz: results/<run>/ (with cuda-check/: env.json, steps.jsonl, summary.md,
pytest.xml), results/<run>-recipes/, reports/<run>/ and reports/<run>-recipes/.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import pack
from .headline import read_jsonl, summary
from .steps import Plan

FOLDER = "cuda-check"


def _env(plan: Plan) -> dict:
    try:
        return json.loads(plan.env_json.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def _members(plan: Plan) -> list[tuple[Path, str]]:
    out = []
    for run in (plan.run_id, plan.recipes_id):
        out.append((plan.results / run, f"results/{run}"))
        out.append((plan.reports / run, f"reports/{run}"))
    return out


def write(plan: Plan, out_dir: Path, records: list[dict], title: str) -> list[str]:
    """Write the pack; returns the ways it breaks the device tool's limits (none, normally)."""
    dest = out_dir / FOLDER
    dest.mkdir(parents=True, exist_ok=True)
    matrix_file = plan.results / plan.run_id / "results.jsonl"
    recipes_file = plan.results / plan.recipes_id / "results.jsonl"
    text = summary(
        title=title,
        steps=records,
        env=_env(plan),
        matrix=read_jsonl(matrix_file),
        recipes=read_jsonl(recipes_file),
    )
    meta = plan.results / plan.run_id / FOLDER
    meta.mkdir(parents=True, exist_ok=True)
    pack.write_text(meta / "summary.md", text)
    pack.write_jsonl(meta / "steps.jsonl", records)
    pack.copy(plan.env_json, meta / "env.json")
    pack.copy(plan.junit, meta / "pytest.xml")
    _, dropped = pack.write_tar(dest / pack.TARBALL, _members(plan))
    if dropped:
        text += "\nThe PNGs were left out of cuda-check.tar.gz to keep it under 16 MiB.\n"
    pack.write_text(dest / "summary.md", text)
    pack.write_jsonl(dest / "steps.jsonl", records)
    pack.copy(plan.env_json, dest / "env.json")
    pack.copy(matrix_file, dest / "results.jsonl")
    pack.copy(recipes_file, dest / "recipes.jsonl")
    pack.write_log(dest / "log.txt", [(r["step"], plan.log(r["step"])) for r in records])
    return pack.check_limits(out_dir)
