"""The ``tgir`` command. Thin: parses arguments, calls the library, prints.

Every user error (missing file, corrupt image, empty text, unknown config key, run without a
checkpoint) is reported as one line ``tgir: error: ...`` with exit code 2.
Layout: one module per command (``add_parser`` + ``run``), the shared flags in common.py.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from tgir import TgirError, __version__
from tgir.cli import (
    ablate,
    bench,
    check,
    demo,
    eval,
    generate,
    index,
    report,
    search,
    serve,
    show,
    train,
)
from tgir.cli.common import parents

# in the order of `tgir --help`
COMMANDS = (generate, check, train, eval, report, search, index, serve, ablate, bench, show, demo)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tgir",
        description="Text-guided image retrieval: find images by a reference image plus a "
                    "text change, by a sentence, or by a set of attributes. Generates its own "
                    "benchmarks (css2d, emoji, clipart), trains the models of five papers "
                    "(MAAF with TIRG and baselines, hffca, HGAN, AIHM, the joint "
                    "visual-textual embedding), evaluates them under their papers' protocols, "
                    "indexes a catalog (or your own folder of images) and serves a search page.",
        epilog="Start with `tgir demo`; `tgir COMMAND --help` explains each command.")
    p.add_argument("--version", action="version", version=f"tgir {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    common = parents()
    for command in COMMANDS:
        command.add_parser(sub, common)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    a = parser.parse_args(argv)
    a.command = "tgir " + shlex.join(argv)  # recorded in results files
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
