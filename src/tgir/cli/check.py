"""``tgir check``: read an own-data folder and report its counts and every problem."""

from __future__ import annotations

import argparse

from tgir import TgirError
from tgir.cli.common import Parents


def add_parser(sub: argparse._SubParsersAction, common: Parents) -> None:
    c = sub.add_parser("check", help="check your own data folder before training",
                       description="Read DIR's triplets.jsonl, captions.jsonl or "
                       "attributes.jsonl (the own-data format, README 'Your own data'), open "
                       "every image once and report the counts per split, the vocabulary, the "
                       "attribute values, and every problem by kind with its line number: "
                       "lines that are not JSON, paths outside DIR, missing / corrupt / "
                       "duplicate images, empty texts, attribute values seen once. Exit 2 when "
                       "there is a problem. Writes nothing.")
    c.add_argument("dataset_dir", help="a folder with one of the JSON Lines files and images")
    c.add_argument("--image-size", type=int, default=64,
                   help="decode every image at this size (64), as training would")
    c.set_defaults(func=run)


def run(a: argparse.Namespace) -> None:
    from tgir.data.folder import check

    r = check(a.dataset_dir, a.image_size)
    splits = ", ".join(f"{k} {v}" for k, v in sorted(r["splits"].items()))
    print(f"{a.dataset_dir}: {r['task']} data ({r['file']}), {r['lines']} lines, "
          f"{r['images']} images; splits: {splits or 'none'}")
    if "vocabulary" in r:
        print(f"vocabulary: {r['vocabulary']} words")
    for name, values in (r.get("attributes") or {}).items():
        print(f"attribute {name}: {', '.join(values)}")
    if r["ok"]:
        print("no problems found; train with e.g. tgir train configs/folder/"
              + {"composed": "maaf", "captions": "hgan", "attributes": "aihm"}[r["task"]]
              + f".yaml --set data.root={a.dataset_dir} --out RUN")
        return
    for line in r["problems"]:
        print(f"problem: {line}")
    raise TgirError(f"{len(r['problems'])} kind(s) of problem in {a.dataset_dir}; nothing "
                    f"was written")
