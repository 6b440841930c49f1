"""``tgir search``: rank a catalog for one query, print the hits, draw a grid."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tgir import TgirError
from tgir.cli.common import Parents, flags

# models/joint_embedding.py METHODS, spelled here so that --help needs no torch import
# (tests/test_cli.py checks they are equal)
REFINE_METHODS = ("qa+saf", "qa", "saf", "filter")


def add_parser(sub: argparse._SubParsersAction, common: Parents) -> None:
    own = flags()
    own.add_argument("run_dir", help="a directory written by tgir train, or an index directory "
                                     "(its manifest names the run)")
    own.add_argument("--image", default=None, help="reference image file")
    own.add_argument("--item", default=None, help="reference: a catalog item id instead")
    own.add_argument("--text", default="", help='modification, e.g. "make top-left red"')
    own.add_argument("--plus", nargs="*", default=[], metavar="WORD",
                     help="desired words (the joint embedding's refinement; other models add "
                          "them to the text), e.g. --plus red")
    own.add_argument("--minus", nargs="*", default=[], metavar="WORD",
                     help="undesired words (joint embedding only, e.g. --minus blue)")
    own.add_argument("--attr", action="append", default=[], metavar="ATTRIBUTE=VALUE",
                     help="attribute query for an attribute model (AIHM), repeatable, e.g. "
                          "--attr gender=woman --attr skin=dark")
    own.add_argument("--method", default=None, choices=REFINE_METHODS,
                     help="joint embedding's refinement: qa+saf (default: query arithmetic + "
                          "soft attribute filtering), qa, saf, or filter (hard, on the "
                          "catalog text)")
    own.add_argument("--index", default=None, help="an index directory (tgir index)")
    own.add_argument("-k", type=int, default=10, help="number of results (default 10)")
    own.add_argument("--keep-reference", action="store_true",
                     help="let the reference item appear in the results")
    own.add_argument("--grid", default=None, help="PNG path (default RUN_DIR/search.png)")
    s = sub.add_parser("search", help="search a catalog: image + text, text, or attributes",
                       description="Rank the catalog of an index (default: the run's "
                       "evaluation split, indexed into RUN_DIR/index) for one query, print the "
                       "top-k ids with scores and write a PNG grid of the query and the "
                       "results. The query kinds a model answers: a reference image (--image "
                       "or --item) + a change (--text): MAAF, TIRG, hffca, the baselines and "
                       "the joint embedding; a text alone (--text): HGAN and the joint "
                       "embedding; attributes (--attr): AIHM and the attribute classifier; a "
                       "reference image alone: an index built with tgir index --pretrained. "
                       "Asking a model for another kind says which kinds it answers. The "
                       "reference item itself is left out unless --keep-reference.",
                       parents=[own, common.device, common.quiet])
    s.set_defaults(func=run)


def _words(values: list[str]) -> list[str]:
    return [w for v in values for w in v.replace(",", " ").split()]


def run(a: argparse.Namespace) -> None:
    from tgir.data.images import decode_image
    from tgir.search.query import parse_query
    from tgir.search.searcher import Searcher

    if a.image is not None:
        decode_image(a.image)  # a missing or corrupt image fails before any model work
    attrs = {}
    for item in a.attr:
        if "=" not in item:
            raise TgirError(f"--attr expects attribute=value, got {item!r}")
        key, value = item.split("=", 1)
        attrs[key.strip()] = value.strip()
    q, k = parse_query({"text": a.text, "item_id": a.item, "plus": _words(a.plus),
                        "minus": _words(a.minus), "keep_reference": a.keep_reference,
                        "attributes": attrs or None, "method": a.method, "k": a.k},
                       image=a.image)
    if a.index is None and (Path(a.run_dir) / "manifest.json").is_file():  # an index dir
        a.index = a.run_dir
        a.run_dir = json.loads((Path(a.index) / "manifest.json").read_text())["model"]["run_dir"]
        if a.grid is None:
            a.grid = str(Path(a.index) / "search.png")
    s = Searcher(a.run_dir, a.index, device=a.device, progress=not a.quiet)
    hits = s.search(q, k)
    for note in s.notes:
        print(f"note: {note}", file=sys.stderr)
    for h in hits:
        print(f"{h.rank:3d}  {h.id}  {h.score:.4f}  {h.text}")
    grid = Path(a.grid) if a.grid else Path(a.run_dir) / "search.png"
    print(f"wrote {s.grid(q, hits, grid)}")
