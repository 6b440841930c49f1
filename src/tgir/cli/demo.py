"""``tgir demo``: generate a benchmark, train and evaluate its models, serve the best."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tgir.cli.common import Parents, flags


def add_parser(sub: argparse._SubParsersAction, common: Parents) -> None:
    own = flags()
    own.add_argument("--dataset", default="css2d",
                     choices=["css2d", "emoji", "emoji_attr", "css2d_attr", "people2d_attr",
                              "clipart", "emoji_pairs", "css2d_text", "emoji_text"],
                     help="benchmark: css2d (default) or emoji: reference image + text "
                          "queries; emoji_attr (person emoji: gender, skin, hair, role) or "
                          "css2d_attr (scene: object count, first object's colour / shape / "
                          "size) or people2d_attr (drawn pedestrians, Market-1501's attributes, "
                          "correlated and noisy): attribute queries (AIHM) on zero-shot "
                          "splits; clipart or "
                          "emoji_pairs: the joint image / catalog-text embedding (MBMR + "
                          "attributes vs MBMR vs triplet) and its refinement search; css2d_text / "
                          "emoji_text: sentence -> image search (HGAN)")
    own.add_argument("--workdir", default=None,
                     help="where data and runs go (default tgir-demo, or tgir-paper)")
    own.add_argument("--scale", default="demo", choices=["demo", "paper", "tiny"],
                     help="css2d scale: demo (fits 15 CPU minutes), paper (CSS size, as in "
                          "MAAF's Table 1; about 25 minutes on 2 idle cores) or tiny (a smoke "
                          "run)")
    own.add_argument("--models", default=None,
                     help="comma-separated models to train (default: maaf,tirg,concat,"
                          "image_only,text_only; for the attribute benchmarks: aihm,aihm4,"
                          "attr_classifier; for clipart: joint,joint_mbmr,joint_triplet)")
    own.add_argument("--steps-scale", type=float, default=None,
                     help="multiply every config's training steps (default 1 for demo, 2 for "
                          "paper; e.g. 0.05 for a smoke run)")
    own.add_argument("--fresh", action="store_true", help="retrain even if runs exist")
    own.add_argument("--cache-dir", default=None, metavar="DIR",
                     help="where frozen backbone features are cached (default "
                          "~/.cache/tgir/features)")
    own.add_argument("--seeds", type=int, nargs="+", default=[0],
                     help="training seeds (default 0); seed 0 trains into runs/MODEL, seed S "
                          "into runs/MODEL-seedS; the results report mean ± std")
    own.add_argument("--results", default=None, metavar="FILE",
                     help="also write the results file here (always: WORKDIR/results/"
                          "DATASET.json)")
    own.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config value for every run (repeatable), e.g. "
                          "train.keep_best=mAP train.val_every=250: keep each run's best "
                          "validation checkpoint")
    own.add_argument("--no-serve", action="store_true",
                     help="stop after the results (default: then serve the search page on the "
                          "best model's index of the test split)")
    own.add_argument("--host", default="127.0.0.1", help="address to serve on (127.0.0.1)")
    own.add_argument("--port", type=int, default=8000, help="port to serve on (8000)")
    d = sub.add_parser("demo", help="generate a benchmark, train and evaluate its models, serve",
                       description="The whole pipeline on this machine: generate a benchmark "
                       "(default css2d at demo scale), train its models from the built-in "
                       "configs, evaluate them under the paper's protocol, print one JSON line "
                       "and write a results file, then serve the search page. css2d / emoji: "
                       "MAAF, TIRG and the concat / image-only / text-only baselines next to "
                       "copy-the-source (about 10 minutes); emoji_attr / css2d_attr / "
                       "people2d_attr: AIHM and "
                       "the attribute classifier; clipart / emoji_pairs: the joint "
                       "visual-textual embedding; css2d_text / emoji_text: HGAN. Finished runs "
                       "are reused, interrupted ones resumed.",
                       parents=[own, common.quiet])
    d.set_defaults(func=run)


def run(a: argparse.Namespace) -> None:
    from tgir.demo import DEFAULT_MODELS, run_demo

    steps_scale = a.steps_scale if a.steps_scale else (1.0 if a.scale == "demo" else 2.0)
    source = a.dataset.split("_")[0]  # attribute benchmarks share their images
    default_dir = ("tgir-demo" if source == "css2d" and a.scale == "demo" else
                   f"tgir-{a.scale}" if source == "css2d" else f"tgir-{source}")
    workdir = Path(a.workdir) if a.workdir else Path(default_dir)
    models = (a.models or DEFAULT_MODELS[a.dataset]).split(",")
    line = run_demo(workdir, models=models, scale=a.scale,
                    steps_scale=steps_scale, fresh=a.fresh, progress=not a.quiet,
                    dataset=a.dataset, seeds=a.seeds, command=a.command,
                    results_path=a.results, cache_dir=a.cache_dir, overrides=a.set)
    print(json.dumps(line), flush=True)
    if not a.no_serve:
        from tgir.search.server import serve

        best = next((m for m in ("maaf", "tirg") if m in models), models[0])
        run = workdir / "runs" / best
        index = run / "index"
        if not (index / "manifest.json").is_file():
            from tgir import config
            from tgir.data.catalog import catalog_split
            from tgir.search.index import build_index

            cfg = config.load(run / "config.yaml")
            build_index(run, cfg.data.root, index,
                        split=catalog_split(cfg.data.name, cfg.data.eval_split),
                        progress=not a.quiet)
        serve(index, run_dir=run, host=a.host, port=a.port)
