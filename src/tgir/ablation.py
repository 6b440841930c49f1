"""``tgir ablate``: a paper's ablation table, mean +- std over seeds.

hffca: the 8 on/off combinations of MCF, CGP and RCC (Zhang et al. Table 1). hgan: the sentence
level with L_ide only, L_pair only, both without and with the pretrained text encoder, then
+ word, + word + phrase (Zheng et al. Table 3), and the attention variants soft / max Gumbel
(Table 5). Top of the stack like the demo: for each row and seed it trains the config
(``--set`` overrides apply to all), evaluates on the config's evaluation split, and writes
``OUT/ablation.json``, a results file (``OUT/results.json``, ``tgir.results`` schema, metric
names as the paper's: R@K for Zhang et al., Rank-K / mAP for Zheng et al.) and a markdown table.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from tgir import TgirError, config, results
from tgir.engine.train import train
from tgir.eval.evaluate import evaluate_run, evaluate_split

# Table 1 of Zhang et al., in its order: (name, mcf, cgp, rcc)
_HFFCA = [("baseline", False, False, False), ("+RCC", False, False, True),
          ("+CGP", False, True, False), ("+CGP+RCC", False, True, True),
          ("+MCF", True, False, False), ("+MCF+RCC", True, False, True),
          ("+MCF+CGP", True, True, False), ("hffca", True, True, True)]
ROWS: dict[str, list[tuple[str, list[str]]]] = {
    "hffca": [(n, [f"model.mcf={a}", f"model.cgp={b}", f"model.rcc={c}"])
              for n, a, b, c in _HFFCA]
    # a documented variant, not a Table 1 row: CGP's weights normalised per backbone level
    # (uniform weights = MAAF's resolution-wise pooling; models/hffca.py)
    + [("+CGP (level norm)", ["model.mcf=false", "model.cgp=true", "model.rcc=false",
                              "model.cgp_norm=level"])],
    "hgan": [("L_ide only", ["model.word=false", "model.phrase=false", "model.pair=false"]),
             ("L_pair only", ["model.word=false", "model.phrase=false", "model.id_weight=0"]),
             ("L_ide + L_pair (no pretrained text)", [
                 "model.word=false", "model.phrase=false", "model.pretrained_text=false",
                 "model.freeze_text=false"]),
             ("sentence", ["model.word=false", "model.phrase=false"]),
             ("+word", ["model.word=true", "model.phrase=false"]),
             ("+word+phrase (HGAN)", ["model.word=true", "model.phrase=true"]),
             # issue 21 item 3: the local levels on their own text projection (models/hgan.py)
             ("HGAN (own local text)", ["model.word=true", "model.phrase=true",
                                        "model.local_text=own"]),
             ("soft attention", ["model.attention=soft"]),
             ("max (k=1)", ["model.attention=max"])],
}
KEYS = {"hffca": ("R@1", "R@10", "R@50"), "hgan": ("t2i R@1", "t2i R@5", "t2i R@10", "t2i mAP")}
# evaluator key -> the paper's metric name in the results file
PAPER_NAMES = {"hffca": {"R@1": "R@1", "R@5": "R@5", "R@10": "R@10", "R@50": "R@50",
                         "R@1 (held-out pairs)": "R@1 held-out", "R@1 (seen pairs)": "R@1 seen",
                         "text_swap_cos": "text-swap cos", "image_swap_cos": "image-swap cos"},
               "hgan": {"t2i R@1": "Rank-1", "t2i R@5": "Rank-5", "t2i R@10": "Rank-10",
                        "t2i mAP": "mAP"}}


def run_ablation(config_path: str | Path, out: str | Path, seeds: list[int],
                 overrides: list[str] | None = None, rows: list[str] | None = None,
                 progress: bool = True, command: str | None = None,
                 results_path: str | Path | None = None, train_missing: bool = True) -> dict:
    """Train and evaluate every row x seed (finished runs are reused); write
    ``OUT/ablation.json``, ``OUT/results.json`` and, if given, ``results_path``.
    ``train_missing=False`` reports the finished runs only (a row lists the seeds it has)."""
    out = Path(out)
    base = config.load(config_path, overrides or [])
    model = base.model["name"]
    if model not in ROWS:
        raise TgirError(f"no ablation table for model {model!r} (have: {', '.join(ROWS)})")
    known = [name for name, _ in ROWS[model]]
    unknown = [r for r in rows or [] if r not in known]
    if unknown:
        raise TgirError(f"no ablation row {', '.join(map(repr, unknown))} for {model} "
                        f"(rows: {', '.join(known)})")
    per_row: dict[str, list[dict]] = {}
    row_seeds: dict[str, list[int]] = {}
    for name, switches in ROWS[model]:
        if rows and name not in rows:
            continue
        for seed in seeds:
            cfg = config.load(config_path, [*(overrides or []), *switches,
                                            f"train.seed={seed}"])
            slug = "".join(ch if ch.isalnum() else "_" for ch in name.replace("+", "plus_"))
            run = out / slug / f"seed{seed}"
            if not (run / "model.safetensors").is_file():
                if not train_missing:
                    continue
                train(cfg, run, resume=(run / "checkpoints" / "last.safetensors").is_file(),
                      progress=progress,
                      validate=lambda m, v, s: evaluate_split(m, v, s, gallery="queries"))
            ev = _evaluation(run)
            r = {**ev["metrics"], **ev.get("sensitivity", {})}  # does q use both inputs
            per_row.setdefault(name, []).append(r)
            row_seeds.setdefault(name, []).append(seed)
            print(f"{name} seed {seed}: {KEYS[model][0]} {r[KEYS[model][0]]:.3f}",
                  file=sys.stderr)
    summary = {name: {k: {"mean": float(np.mean([r[k] for r in rs])),
                          "std": float(np.std([r[k] for r in rs]))} for k in KEYS[model]}
               for name, rs in per_row.items()}
    out.mkdir(parents=True, exist_ok=True)
    if not per_row:
        raise TgirError(f"no finished run in {out} for these rows and seeds")
    (out / "ablation.json").write_text(json.dumps({"config": str(config_path), "seeds": seeds,
                                                   "overrides": overrides or [],
                                                   "summary": summary, "runs": per_row},
                                                  indent=1))
    doc = results.new(f"{model} ablation on {base.data.name}",
                      command or f"tgir ablate {config_path} --out {out}", base.train.steps,
                      [results.make_row(name, row_seeds[name], rs, PAPER_NAMES[model],
                                        scales={"text_swap_cos": 1.0, "image_swap_cos": 1.0},
                                        columns={"seeds": str(len(rs))})
                       for name, rs in per_row.items()],
                      digits={"text-swap cos": 2, "image-swap cos": 2},
                      lower_is_better=["text-swap cos", "image-swap cos"])
    results.write(doc, out / "results.json")
    if results_path:
        results.write(doc, results_path)
    return summary


def _evaluation(run: Path) -> dict:
    """The run's test evaluation: its ``metrics.json`` when that is newer than the model and
    holds everything this evaluator reports (swap sensitivity, held-out pairs where the split
    has them), else a fresh ``evaluate_run``."""
    saved = run / "metrics.json"
    if saved.is_file() and saved.stat().st_mtime > (run / "model.safetensors").stat().st_mtime:
        ev = json.loads(saved.read_text())
        m = ev.get("metrics", {})
        composed = "R@1" in m and "t2i R@1" not in m
        if not composed or ("sensitivity" in ev and "R@1 (held-out pairs)" in m):
            return ev
    return evaluate_run(run, progress=False)


def markdown(summary: dict) -> str:
    keys = list(next(iter(summary.values()))) if summary else []
    lines = ["| model | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for name, s in summary.items():
        lines.append(f"| {name} | " + " | ".join(
            f"{100 * s[k]['mean']:.1f} ± {100 * s[k]['std']:.1f}" for k in keys) + " |")
    return "\n".join(lines)
