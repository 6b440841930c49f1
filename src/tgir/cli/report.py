"""``tgir report``: print results files as markdown tables."""

from __future__ import annotations

import argparse

from tgir.cli.common import Parents


def add_parser(sub: argparse._SubParsersAction, common: Parents) -> None:
    r = sub.add_parser("report", help="print a results file as the README's markdown table",
                       description="Print results/*.json files (written by tgir demo, ablate, "
                       "bench refine and eval with --results) as markdown tables: one row per "
                       "model, mean ± std over seeds, the best of each column in bold. The "
                       "README's tables are this output.")
    r.add_argument("files", nargs="+", metavar="FILE", help="results files")
    r.add_argument("--metrics", default=None,
                   help="comma-separated columns, e.g. R@1,R@10 (default: all)")
    r.add_argument("--source", action="store_true",
                   help="also print the command, commit, date, steps and machine")
    r.set_defaults(func=run)


def run(a: argparse.Namespace) -> None:
    from tgir import results

    for i, path in enumerate(a.files):
        doc = results.load(path)
        if len(a.files) > 1:
            print(("\n" if i else "") + f"{path}: {doc['benchmark']}")
        print(results.markdown(doc, a.metrics.split(",") if a.metrics else None))
        if a.source:
            print(f"\n{doc['command']} (commit {doc['commit']}, {doc['date']}, "
                  f"{doc['steps']} steps, {doc['machine']})")
