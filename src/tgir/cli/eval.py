"""``tgir eval``: evaluate a trained run under its paper's protocol."""

from __future__ import annotations

import argparse
from pathlib import Path

from tgir.cli.common import Parents, flags


def add_parser(sub: argparse._SubParsersAction, common: Parents) -> None:
    head = flags()
    head.add_argument("run_dir", help="a directory written by tgir train")
    head.add_argument("--split", default=None, help="split to evaluate (default: config's)")
    head.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="protocol / data location overrides: eval.gallery=all|queries, "
                           "eval.keep_reference=true, eval.rerank=N, data.root=DIR")
    tail = flags()
    tail.add_argument("--strict", action="store_true",
                      help="stop at the first missing or unreadable image")
    tail.add_argument("--results", default=None, metavar="FILE",
                      help="also write a results file (schema of tgir report), e.g. "
                           "results/X.json")
    e = sub.add_parser("eval", help="evaluate a trained run under its paper's protocol",
                       description="Evaluate under the dataset's paper protocol. Composed: "
                       "embed the gallery once, compose every query, rank with the reference "
                       "image excluded and count a hit when the target's label is in the top "
                       "K (TIRG / MAAF; FashionIQ adds per-category R@10 / R@50). Attributes "
                       "and person search: Rank-1/5/10, mAP, mINP. CUB / Flowers: AP@50 and "
                       "R@1. Prints a table and writes RUN_DIR/metrics.json.",
                       parents=[head, common.device, tail, common.quiet])
    e.set_defaults(func=run)


def run(a: argparse.Namespace) -> None:
    from tgir.eval.evaluate import evaluate_run, format_table

    r = evaluate_run(a.run_dir, a.split, progress=not a.quiet, device=a.device,
                     strict=a.strict, overrides=a.set)
    print(f"{r['dataset']} {r['split']}: {r['queries']} queries, gallery {r['gallery']} images")
    print(format_table({r["model"]: r["metrics"]}))
    print(f"wrote {Path(a.run_dir) / 'metrics.json'}")
    if "sensitivity" in r:
        s = r["sensitivity"]
        print(f"swap sensitivity (cosine of the query with itself under a swapped input; 1 = "
              f"ignored): text {s['text_swap_cos']:.3f}, reference image "
              f"{s['image_swap_cos']:.3f}")
    if a.results:
        from tgir import config, results

        cfg = config.load(Path(a.run_dir) / "config.yaml")
        names = results.paper_names(list(r["metrics"]))
        doc = results.new(f"{r['dataset']} {r['split']}", a.command, cfg.train.steps,
                          [results.make_row(r["model"], [cfg.train.seed], [r["metrics"]],
                                            names)])
        print(f"wrote {results.write(doc, a.results)}")
