"""``tgir show``: a contact sheet PNG of a dataset."""

from __future__ import annotations

import argparse
from pathlib import Path

from tgir.cli.common import Parents


def add_parser(sub: argparse._SubParsersAction, common: Parents) -> None:
    h = sub.add_parser("show", help="write a contact sheet PNG of a dataset",
                       description="Draw a grid of a dataset's images with their names or "
                       "texts (and, for composed benchmarks, a few query -> target pairs) so a "
                       "person can look at what was built.")
    h.add_argument("dataset_dir", help="a directory written by tgir generate")
    h.add_argument("--out", default=None, help="PNG path (default DATASET_DIR/contact_sheet.png)")
    h.add_argument("-n", type=int, default=48, help="number of images (48)")
    h.add_argument("--split", default="test", help="split to show (test)")
    h.add_argument("--seed", type=int, default=0, help="which random images (0)")
    h.set_defaults(func=run)


def run(a: argparse.Namespace) -> None:
    from tgir.data.sheet import contact_sheet

    out = contact_sheet(Path(a.dataset_dir), Path(a.out) if a.out else None, n=a.n,
                        seed=a.seed, split=a.split)
    print(f"wrote {out}")
