"""``tgir ablate``: the module ablation of seed 003 Table 1 (hffca), mean +- std over seeds.

Top of the stack like the demo: for each of the 8 on/off combinations of MCF, CGP and RCC and
each seed it trains the config (``--set`` overrides apply to all), evaluates on the config's
evaluation split, and writes ``OUT/ablation.json`` and a markdown table.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from tgir import config
from tgir.engine.train import train
from tgir.eval.evaluate import evaluate_run, evaluate_split

# Table 1 of seed 003, in its order: (name, mcf, cgp, rcc)
ROWS = [("baseline", False, False, False), ("+RCC", False, False, True),
        ("+CGP", False, True, False), ("+CGP+RCC", False, True, True),
        ("+MCF", True, False, False), ("+MCF+RCC", True, False, True),
        ("+MCF+CGP", True, True, False), ("+MCF+CGP+RCC", True, True, True)]
KS = ("R@1", "R@10", "R@50")


def run_ablation(config_path: str | Path, out: str | Path, seeds: list[int],
                 overrides: list[str] | None = None, rows: list[str] | None = None,
                 progress: bool = True) -> dict:
    out = Path(out)
    results: dict[str, list[dict]] = {}
    for name, mcf, cgp, rcc in ROWS:
        if rows and name not in rows:
            continue
        for seed in seeds:
            cfg = config.load(config_path, [*(overrides or []), f"model.mcf={mcf}",
                                            f"model.cgp={cgp}", f"model.rcc={rcc}",
                                            f"train.seed={seed}"])
            run = out / name.replace("+", "plus_") / f"seed{seed}"
            if not (run / "model.safetensors").is_file():
                train(cfg, run, resume=(run / "checkpoints" / "last.safetensors").is_file(),
                      progress=progress,
                      validate=lambda m, v, s: evaluate_split(m, v, s, gallery="queries"))
            r = evaluate_run(run, progress=False)["metrics"]
            results.setdefault(name, []).append(r)
            print(f"{name} seed {seed}: R@1 {r['R@1']:.3f}", file=sys.stderr)
    summary = {name: {k: {"mean": float(np.mean([r[k] for r in rs])),
                          "std": float(np.std([r[k] for r in rs]))} for k in KS}
               for name, rs in results.items()}
    out.mkdir(parents=True, exist_ok=True)
    (out / "ablation.json").write_text(json.dumps({"config": str(config_path), "seeds": seeds,
                                                   "overrides": overrides or [],
                                                   "summary": summary, "runs": results},
                                                  indent=1))
    return summary


def markdown(summary: dict) -> str:
    lines = ["| model | " + " | ".join(KS) + " |", "|---|" + "---|" * len(KS)]
    for name, s in summary.items():
        lines.append(f"| {name} | " + " | ".join(
            f"{100 * s[k]['mean']:.1f} ± {100 * s[k]['std']:.1f}" for k in KS) + " |")
    return "\n".join(lines)
