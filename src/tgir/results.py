"""Results as data: one JSON file per benchmark table (issue 18).

Every benchmark command (``tgir demo``, ``tgir ablate``, ``tgir bench refine``, ``tgir eval``)
can write a results file; the README's tables are ``tgir report FILE`` of the committed
files under ``results/``. The schema (more keys are allowed)::

    {"benchmark": str, "commit": str, "command": str, "date": str, "steps": int,
     "machine": str,
     "rows": [{"model": str, "seeds": [int, ...],
               "metrics": {"R@1": {"mean": float, "std": float, "per_seed": [float, ...]}}}]}

Metric names are the paper's protocol's (``R@1``, ``Rank-1``, ``mAP``, ``MM``, ...), in percent
where the README shows percent. Optional keys: ``digits`` (metric -> decimals in the table,
default 1), ``bold`` (false: no best-in-column marks), ``lower_is_better`` (metrics whose
smallest mean is the best), ``note`` (where the figures came from), per row ``columns``
(extra text columns, e.g. the training budget or the paper's number).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np

from tgir import TgirError

KEYS = ("benchmark", "commit", "command", "date", "steps", "machine", "rows")


def metric(values: list[float]) -> dict:
    """``{"mean", "std", "per_seed"}`` of per-seed values (population std, 0 for one seed)."""
    v = [float(x) for x in values]
    if not v:
        raise TgirError("a metric needs at least one per-seed value")
    return {"mean": float(np.mean(v)), "std": float(np.std(v)), "per_seed": v}


def make_row(model: str, seeds: list[int], per_seed: list[dict[str, float]],
             names: dict[str, str], scale: float = 100.0,
             columns: dict[str, str] | None = None,
             scales: dict[str, float] | None = None) -> dict:
    """One table row from per-seed metric dicts. ``names`` maps an evaluator key (``t2i
    R@1``) to the paper's name (``Rank-1``); values are multiplied by ``scale`` (percent),
    or by ``scales[key]`` for the keys it names (e.g. 1 for a cosine)."""
    if len(seeds) != len(per_seed):
        raise TgirError(f"row {model!r}: {len(seeds)} seeds but {len(per_seed)} results")
    sc = scales or {}
    metrics = {name: metric([sc.get(key, scale) * r[key] for r in per_seed])
               for key, name in names.items() if all(key in r for r in per_seed)}
    row = {"model": model, "seeds": [int(s) for s in seeds], "metrics": metrics}
    if columns:
        row["columns"] = dict(columns)
    return row


def git_commit(where: Path | None = None) -> str:
    """The checkout's short commit, ``+dirty`` when tracked files differ from it;
    ``unknown`` outside a git checkout (an installed package)."""
    where = where or Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=where, text=True,
                              capture_output=True, timeout=10)
        if head.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=where, text=True, capture_output=True, timeout=10)
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine() -> str:
    """What ran it: architecture, cores, accelerator."""
    import torch

    acc = (f"CUDA {torch.cuda.get_device_name(0)}" if torch.cuda.is_available()
           else "no GPU")
    return f"{platform.machine()}, {os.cpu_count()} CPU cores, {acc}"


def new(benchmark: str, command: str, steps: int, rows: list[dict], **extra) -> dict:
    """A results document for ``rows`` measured now by ``command``."""
    doc = {"benchmark": benchmark, "commit": git_commit(), "command": command,
           "date": time.strftime("%Y-%m-%d"), "steps": int(steps), "machine": machine(),
           "rows": rows, **extra}
    return validate(doc, benchmark)


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and np.isfinite(x)


def validate(doc: dict, source: str | Path) -> dict:
    """Check the schema; a problem is a TgirError naming the file and the field."""
    where = str(source)
    if not isinstance(doc, dict):
        raise TgirError(f"{where}: a results file is a JSON object")
    missing = [k for k in KEYS if k not in doc]
    if missing:
        raise TgirError(f"{where}: missing key(s) {', '.join(missing)}")
    for k in ("benchmark", "commit", "command", "date", "machine"):
        if not isinstance(doc[k], str) or not doc[k]:
            raise TgirError(f"{where}: {k!r} must be a non-empty string")
    if not isinstance(doc["steps"], int) or isinstance(doc["steps"], bool):
        raise TgirError(f"{where}: 'steps' must be an integer")
    if not isinstance(doc["rows"], list) or not doc["rows"]:
        raise TgirError(f"{where}: 'rows' must be a non-empty list")
    for i, row in enumerate(doc["rows"]):
        at = f"{where}: rows[{i}]"
        if not isinstance(row, dict) or not isinstance(row.get("model"), str):
            raise TgirError(f"{at}: needs a 'model' string")
        seeds = row.get("seeds")
        if not isinstance(seeds, list) or not all(isinstance(s, int) for s in seeds):
            raise TgirError(f"{at} ({row['model']}): 'seeds' must be a list of integers")
        if not isinstance(row.get("metrics"), dict) or not row["metrics"]:
            raise TgirError(f"{at} ({row['model']}): 'metrics' must be a non-empty object")
        for name, m in row["metrics"].items():
            if not isinstance(m, dict) or not all(k in m for k in ("mean", "std", "per_seed")):
                raise TgirError(f"{at} ({row['model']}) {name}: needs mean, std, per_seed")
            if not (_is_number(m["mean"]) and _is_number(m["std"])):
                raise TgirError(f"{at} ({row['model']}) {name}: mean and std must be numbers")
            per = m["per_seed"]
            if not isinstance(per, list) or not all(_is_number(x) for x in per):
                raise TgirError(f"{at} ({row['model']}) {name}: per_seed must be numbers")
            if per and len(per) != len(seeds):
                raise TgirError(f"{at} ({row['model']}) {name}: {len(per)} per-seed values "
                                f"for {len(seeds)} seeds")
            if per and (abs(np.mean(per) - m["mean"]) > 1e-6 * max(1.0, abs(m["mean"]))
                        or abs(np.std(per) - m["std"]) > 1e-6 * max(1.0, abs(m["std"]))):
                raise TgirError(f"{at} ({row['model']}) {name}: mean / std do not match "
                                f"per_seed")
    return doc


def load(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise TgirError(f"results file not found: {path}")
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise TgirError(f"{path}: not valid JSON ({e.msg}, line {e.lineno})") from e
    return validate(doc, path)


def write(doc: dict, path: str | Path) -> Path:
    """Validate and write atomically (a temp file renamed over the old one)."""
    path = Path(path)
    validate(doc, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return path


def _cell(m: dict, digits: int, bold: bool, n_seeds: int) -> str:
    text = f"{m['mean']:.{digits}f}"
    if n_seeds > 1:
        text += f" ± {m['std']:.{digits}f}"
    return f"**{text}**" if bold else text


def markdown(doc: dict, metrics: list[str] | None = None, bold: bool | None = None) -> str:
    """The README table of a results document: one row per model, ``mean ± std`` where
    there is more than one seed, the best mean of each column in bold (all metrics here are
    higher-is-better; a document whose rows are not competitors, e.g. query categories, sets
    ``"bold": false``), then the rows' extra text columns."""
    rows = doc["rows"]
    bold = doc.get("bold", True) if bold is None else bold
    names = metrics or list(dict.fromkeys(k for r in rows for k in r["metrics"]))
    unknown = [n for n in names if not any(n in r["metrics"] for r in rows)]
    if unknown:
        have = list(dict.fromkeys(k for r in rows for k in r["metrics"]))
        raise TgirError(f"{doc['benchmark']}: no metric {', '.join(unknown)} "
                        f"(have: {', '.join(have)})")
    extra = list(dict.fromkeys(k for r in rows for k in r.get("columns", {})))
    digits = doc.get("digits", {})
    lower = set(doc.get("lower_is_better", []))
    best = {n: (min if n in lower else max)(
        (round(r["metrics"][n]["mean"], digits.get(n, 1)) for r in rows if n in r["metrics"]),
        default=None) for n in names}
    lines = ["| model | " + " | ".join(names + extra) + " |",
             "|---|" + "---|" * (len(names) + len(extra))]
    for r in rows:
        cells = []
        for n in names:
            m = r["metrics"].get(n)
            d = digits.get(n, 1)
            cells.append("—" if m is None else _cell(
                m, d, bold and len(rows) > 1 and round(m["mean"], d) == best[n],
                len(r["seeds"])))
        cells += [r.get("columns", {}).get(c, "") for c in extra]
        lines.append(f"| {r['model']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paper_names(keys: list[str]) -> dict[str, str]:
    """Evaluator key -> the protocol's name in results files. Person search (Zheng et al.: a
    ``t2i mAP`` key) reports text -> image as ``Rank-K`` / ``mAP`` / ``mINP`` and image -> text
    as ``i2t Rank-K`` / ``i2t mAP``; every other protocol keeps its keys (``R@K``, ``mAP``,
    ``i2t R@K``, FashionIQ's ``(R10+R50)/2``)."""
    if "t2i mAP" not in keys:
        return {k: k for k in keys}
    out = {}
    for k in keys:
        side, _, name = k.partition(" ")
        name = name.replace("R@", "Rank-")
        out[k] = name if side == "t2i" else f"{side} {name}"
    return out
