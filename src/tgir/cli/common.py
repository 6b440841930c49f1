"""What several commands share: their identical flags, as argparse parent parsers.

A command passes them in ``parents=[...]`` after a parser of its own flags (:func:`flags`), so
each shared flag keeps its place in the command's ``--help``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass


@dataclass(frozen=True)
class Parents:
    """The shared flags, one parent parser each (``add_help=False``)."""

    quiet: argparse.ArgumentParser  # -q / --quiet: no progress bars
    device: argparse.ArgumentParser  # --device auto|cpu|cuda


def flags() -> argparse.ArgumentParser:
    """An empty parent parser for a command's own flags."""
    return argparse.ArgumentParser(add_help=False)


def parents() -> Parents:
    """Fresh parent parsers (one set per :func:`tgir.cli.build_parser` call)."""
    quiet = flags()
    quiet.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    device = flags()
    device.add_argument("--device", default="auto", help="auto, cpu or cuda")
    return Parents(quiet=quiet, device=device)
