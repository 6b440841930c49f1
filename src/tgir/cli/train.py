"""``tgir train``: train the model a YAML config describes (or resume a run)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tgir import TgirError
from tgir.cli.common import Parents, flags


def add_parser(sub: argparse._SubParsersAction, common: Parents) -> None:
    own = flags()
    own.add_argument("config", nargs="?", metavar="CONFIG",
                     help="YAML config, e.g. configs/css2d/maaf.yaml (required unless --resume)")
    own.add_argument("--out", required=True, help="run directory")
    own.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config value, e.g. --set train.steps=500 (repeatable)")
    own.add_argument("--resume", action="store_true",
                     help="continue RUN_DIR from its last checkpoint with its saved config")
    own.add_argument("--strict", action="store_true",
                     help="stop at the first missing or unreadable image (default: check all and "
                          "report them by name with counts)")
    own.add_argument("--cache-dir", default=None, metavar="DIR",
                     help="where a frozen backbone's features are cached (default "
                          "$XDG_CACHE_HOME/tgir/features, i.e. ~/.cache/tgir/features)")
    t = sub.add_parser("train", help="train a model from a YAML config",
                       description="Train the model a YAML config describes (see configs/). "
                       "Writes RUN_DIR/config.yaml, vocab.json, log.csv, checkpoints/last."
                       "safetensors (every train.ckpt_every steps) and model.safetensors.",
                       parents=[own, common.device, common.quiet])
    t.set_defaults(func=run)


def run(a: argparse.Namespace) -> None:
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
    if a.strict:
        cfg.data.strict = True
    if a.cache_dir:
        cfg.train.feature_cache = a.cache_dir
    if a.device != "auto":
        cfg.train.device = a.device
    summary = train(cfg, out, resume=a.resume, progress=not a.quiet,
                    validate=lambda m, v, s: evaluate_split(m, v, s, gallery="queries"))
    print(json.dumps(summary))
