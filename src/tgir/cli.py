"""The ``tgir`` command. Thin: parses arguments, calls the library, prints.

Every user error (missing file, corrupt image, empty text, unknown config key, run without a
checkpoint) is reported as one line ``tgir: error: ...`` with exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tgir import TgirError, __version__


def _cmd_generate(a: argparse.Namespace) -> None:
    if a.dataset != "css2d":
        raise TgirError(f"cannot generate {a.dataset!r} yet (available: css2d)")
    from tgir.data import css2d

    out = css2d.generate(Path(a.out), a.scale, a.seed, progress=not a.quiet,
                         **({"image_size": a.size} if a.size else {}))
    doc = css2d.read_annotations(out)
    for name, s in doc["splits"].items():
        print(f"{name}: {len(s['images'])} images, {len(s['queries'])} queries")
    print(f"wrote {out}")


def _cmd_train(a: argparse.Namespace) -> None:
    from tgir import config
    from tgir.engine.train import train
    from tgir.eval.evaluate import evaluate_split

    out = Path(a.out)
    if a.resume:
        if a.set:
            raise TgirError("--resume continues the saved config; --set cannot change it")
        cfg = config.load(out / "config.yaml")
    else:
        cfg = config.load(a.config, a.set)
    summary = train(cfg, out, resume=a.resume, progress=not a.quiet,
                    validate=lambda m, v, s: evaluate_split(m, v, s, gallery="queries"))
    print(json.dumps(summary))


def _cmd_eval(a: argparse.Namespace) -> None:
    from tgir.eval.evaluate import evaluate_run, format_table

    r = evaluate_run(a.run_dir, a.split, progress=not a.quiet, device=a.device)
    print(f"{r['dataset']} {r['split']}: {r['queries']} queries, gallery {r['gallery']} images")
    print(format_table({r["model"]: r["metrics"]}))
    print(f"wrote {Path(a.run_dir) / 'metrics.json'}")


def _cmd_search(a: argparse.Namespace) -> None:
    from tgir.data.images import decode_image
    from tgir.search.searcher import Searcher

    if not a.text.strip():
        raise TgirError("the modification text is empty")
    decode_image(a.image)  # a missing or corrupt image fails before any model work
    s = Searcher(a.run_dir, device=a.device, progress=not a.quiet)
    unknown = s.unknown_words(a.text)
    if unknown:
        print(f"note: words not seen in training: {', '.join(unknown)}", file=sys.stderr)
    hits = s.search(a.image, a.text, a.k)
    for h in hits:
        print(f"{h.rank:3d}  {h.id}  {h.score:.4f}")
    grid = Path(a.grid) if a.grid else Path(a.run_dir) / "search.png"
    print(f"wrote {s.grid(a.image, a.text, hits, grid)}")


def _cmd_demo(a: argparse.Namespace) -> None:
    from tgir.demo import run_demo

    steps_scale = a.steps_scale if a.steps_scale else (1.0 if a.scale == "demo" else 2.0)
    workdir = Path(a.workdir) if a.workdir else Path("tgir-demo" if a.scale == "demo"
                                                     else f"tgir-{a.scale}")
    line = run_demo(workdir, models=a.models.split(","), scale=a.scale,
                    steps_scale=steps_scale, fresh=a.fresh, progress=not a.quiet)
    if not a.no_serve:
        print("(serving comes with the search-service issue; --no-serve and no flag are the "
              "same for now)", file=sys.stderr)
    print(json.dumps(line))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tgir",
        description="Text-guided image retrieval: generate the css2d benchmark, train composed "
                    "models (MAAF, TIRG, baselines), evaluate them and search with them.")
    p.add_argument("--version", action="version", version=f"tgir {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    g = sub.add_parser("generate", help="generate a benchmark dataset (css2d)",
                       description="Generate css2d, TIRG's CSS benchmark re-created in 2D: "
                       "scenes of objects on a 3x3 grid, add/remove/make modification texts, "
                       "a train and a test split with held-out colour-shape compositions.")
    g.add_argument("dataset", choices=["css2d"], help="what to generate")
    g.add_argument("--out", required=True, help="output directory (replaced atomically)")
    g.add_argument("--scale", default="demo", choices=["demo", "paper", "tiny"],
                   help="demo: ~13k/6k images (minutes to train); paper: CSS size, ~19k "
                        "images and ~17k queries per split; tiny: for tests")
    g.add_argument("--seed", type=int, default=0, help="random seed (same seed, same data)")
    g.add_argument("--size", type=int, default=None, help="image side in pixels (default 64)")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    g.set_defaults(func=_cmd_generate)

    t = sub.add_parser("train", help="train a model from a YAML config",
                       description="Train the model a YAML config describes (see configs/). "
                       "Writes RUN_DIR/config.yaml, vocab.json, log.csv, checkpoints/last."
                       "safetensors (every train.ckpt_every steps) and model.safetensors.")
    t.add_argument("config", nargs="?", help="YAML config, e.g. configs/css2d/maaf.yaml")
    t.add_argument("--out", required=True, help="run directory")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.steps=500 (repeatable)")
    t.add_argument("--resume", action="store_true",
                   help="continue RUN_DIR from its last checkpoint with its saved config")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    t.set_defaults(func=_cmd_train)

    e = sub.add_parser("eval", help="evaluate a trained run (R@1/5/10/50/100)",
                       description="Embed the gallery once, compose every query, rank with "
                       "the source image excluded and count a hit when the target's scene "
                       "label is in the top K (TIRG / MAAF protocol). Prints a table and "
                       "writes RUN_DIR/metrics.json.")
    e.add_argument("run_dir", help="a directory written by tgir train")
    e.add_argument("--split", default=None, help="split to evaluate (default: config's)")
    e.add_argument("--device", default="auto", help="auto, cpu or cuda")
    e.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    e.set_defaults(func=_cmd_eval)

    s = sub.add_parser("search", help="search with a reference image and a modification text",
                       description="Compose a reference image with a modification text, rank "
                       "the run's evaluation gallery, print the top-k ids with scores and "
                       "write a PNG grid of the query and the results.")
    s.add_argument("run_dir", help="a directory written by tgir train")
    s.add_argument("--image", required=True, help="reference image file")
    s.add_argument("--text", required=True, help='modification, e.g. "make top-left red"')
    s.add_argument("-k", type=int, default=10, help="number of results (default 10)")
    s.add_argument("--grid", default=None, help="PNG path (default RUN_DIR/search.png)")
    s.add_argument("--device", default="auto", help="auto, cpu or cuda")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    s.set_defaults(func=_cmd_search)

    d = sub.add_parser("demo", help="generate css2d, train and evaluate every model",
                       description="The whole pipeline on this machine: generate css2d at demo "
                       "scale, train MAAF, TIRG and the concat / image-only / text-only "
                       "baselines, evaluate them next to a copy-the-source baseline, and "
                       "print one JSON line with the results. Finished runs are reused.")
    d.add_argument("--workdir", default=None,
                   help="where data and runs go (default tgir-demo, or tgir-paper)")
    d.add_argument("--scale", default="demo", choices=["demo", "paper", "tiny"],
                   help="css2d scale: demo (fits 15 CPU minutes), paper (CSS size, the "
                        "ordering of seed 004 Table 1; about an hour on 2 cores) or tiny (a "
                        "smoke run)")
    d.add_argument("--models", default="maaf,tirg,concat,image_only,text_only",
                   help="comma-separated models to train")
    d.add_argument("--steps-scale", type=float, default=None,
                   help="multiply every config's training steps (default 1 for demo, 2 for "
                        "paper; e.g. 0.05 for a smoke run)")
    d.add_argument("--fresh", action="store_true", help="retrain even if runs exist")
    d.add_argument("--no-serve", action="store_true", help="stop after the results")
    d.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    d.set_defaults(func=_cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    if a.cmd == "train" and not a.resume and not a.config:
        parser.error("train needs a CONFIG (or --resume)")
    try:
        a.func(a)
    except TgirError as e:
        print(f"tgir: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tgir: interrupted (checkpoints and finished files are intact)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
