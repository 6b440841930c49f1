"""``tgir bench``: paper benchmarks over a trained run (``bench refine``: Sadeh et al. Table 1)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tgir.cli.common import Parents, flags


def add_parser(sub: argparse._SubParsersAction, common: Parents) -> None:
    bn = sub.add_parser("bench", help="paper benchmarks over a trained run",
                        description="Benchmarks that need more than the retrieval metrics of "
                        "tgir eval.")
    bsub = bn.add_subparsers(dest="bench", required=True, metavar="BENCHMARK")
    head = flags()
    head.add_argument("run_dir", help="a trained joint-embedding run (model.name: joint)")
    head.add_argument("--data", default=None, help="catalog directory (default: the run's)")
    head.add_argument("--per-category", type=int, default=200,
                      help="queries per attribute category (200)")
    head.add_argument("-k", type=int, default=10, help="nDCG cut-off K (10)")
    head.add_argument("--seed", type=int, default=0, help="query sampling seed (0)")
    head.add_argument("--oracle-steps", type=int, default=400,
                      help="training steps of the visual oracle (400)")
    head.add_argument("--qa-raw", action="store_true",
                      help="query arithmetic on the raw vectors (literal eq. 9) instead of "
                           "unit-length terms")
    head.add_argument("--out", default=None, help="output directory (default RUN_DIR/refine)")
    tail = flags()
    tail.add_argument("--results", default=None, metavar="FILE",
                      help="also write a results file (one row per attribute category)")
    rf = bsub.add_parser(
        "refine", help="Table 1 of Sadeh et al.: SAF / QA / QA+SAF with V-nDCG, T-nDCG, MM",
        description="Generate the multimodal refinement queries of Sadeh et al. (Joint "
        "Visual-Textual Embedding for Multimodal Style Search) on the run's test "
        "catalog (a query item + desired / undesired words of one attribute category: add, "
        "remove or replace), rank the catalog with soft attribute filtering (eq. 12), query "
        "arithmetic (eq. 9-10) and both (eq. 13), and score the top K with V-nDCG (a visual "
        "oracle trained with a triplet loss), T-nDCG (the metadata meets the request) and "
        "MM = sqrt(V x T). Also draws attribute-extraction examples (Figure 3).",
        parents=[head, common.device, tail])
    rf.set_defaults(func=run)


def run(a: argparse.Namespace) -> None:
    from tgir.data import build
    from tgir.engine.device import pick_device
    from tgir.eval.refine import (
        attribute_examples,
        markdown_table,
        run_refine_benchmark,
        save_result,
    )
    from tgir.models.checkpoint import load_run

    cfg, vocab, model = load_run(a.run_dir, pick_device(a.device))
    if a.qa_raw:
        model.qa_normalize = False  # the literal eq. 9, without unit-length terms
    root = a.data or cfg.data.root
    train_split = build(cfg.data.name, root, cfg.data.train_split, cfg.data.image_size)
    test_split = build(cfg.data.name, root, cfg.data.eval_split, cfg.data.image_size)
    result = run_refine_benchmark(model, vocab, train_split, test_split,
                                  per_category=a.per_category, k=a.k, seed=a.seed,
                                  oracle_steps=a.oracle_steps)
    out = Path(a.out) if a.out else Path(a.run_dir) / "refine"
    save_result(result, out)
    attribute_examples(model, vocab, test_split, out / "attribute_examples.png")
    print(f"{result['queries']} queries ({a.per_category} per category), nDCG@{a.k}, "
          f"test catalog of {len(test_split.images)} items")
    print(markdown_table(result))
    print(f"wrote {out / 'refine.json'}, {out / 'refine.md'}, {out / 'attribute_examples.png'}")
    if a.results:
        from tgir import results
        from tgir.eval.refine import results_rows

        doc = results.new(f"refinement ({cfg.data.name}, {cfg.model['name']})", a.command,
                          cfg.train.steps, results_rows(result, cfg.train.seed),
                          digits=dict.fromkeys(results_rows(result, 0)[0]["metrics"], 3),
                          bold=False)
        print(f"wrote {results.write(doc, a.results)}")
