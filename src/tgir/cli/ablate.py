"""``tgir ablate``: a paper's ablation table (hffca, hgan)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tgir.cli.common import Parents, flags


def add_parser(sub: argparse._SubParsersAction, common: Parents) -> None:
    own = flags()
    own.add_argument("config", help="an hffca or hgan config, e.g. configs/css2d/hffca.yaml")
    own.add_argument("--out", required=True, help="directory for the runs and ablation.json")
    own.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (0 1 2)")
    own.add_argument("--rows", default=None,
                     help="comma-separated subset, e.g. baseline,hffca (default all 8)")
    own.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config value for every run (repeatable)")
    own.add_argument("--results", default=None, metavar="FILE",
                     help="also write the results file here (always: OUT/results.json)")
    own.add_argument("--no-train", action="store_true",
                     help="report the finished runs only (each row lists the seeds it has)")
    b = sub.add_parser("ablate", help="a paper's ablation table (hffca: Table 1 of Zhang et "
                       "al.; hgan: Tables 3 / 5 of Zheng et al.)",
                       description="For an hffca config, train the 8 on/off combinations of "
                       "MCF, CGP and RCC (Table 1 of Zhang et al., Heterogeneous Feature Fusion "
                       "and Cross-modal Alignment for Composed Image Retrieval); for an hgan "
                       "config, the sentence level alone, + word, + word + phrase, and soft / "
                       "max-Gumbel attention (Tables 3 and 5 of Zheng et al., Hierarchical "
                       "Gumbel Attention Network for Text-based Person Search). Each row for "
                       "each seed; prints mean ± std of the paper's metrics and writes a "
                       "results file. Finished runs are reused.",
                       parents=[own, common.quiet])
    b.set_defaults(func=run)


def run(a: argparse.Namespace) -> None:
    from tgir.ablation import markdown, run_ablation

    summary = run_ablation(a.config, a.out, a.seeds, a.set,
                           rows=a.rows.split(",") if a.rows else None, progress=not a.quiet,
                           command=a.command, results_path=a.results,
                           train_missing=not a.no_train)
    print(markdown(summary))
    print(f"wrote {Path(a.out) / 'ablation.json'}, {Path(a.out) / 'results.json'}"
          + (f", {a.results}" if a.results else ""))
