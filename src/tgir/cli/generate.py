"""``tgir generate``: write a benchmark dataset, or an example of the own-data format."""

from __future__ import annotations

import argparse
from pathlib import Path

from tgir import TgirError
from tgir.cli.common import Parents, flags


def add_parser(sub: argparse._SubParsersAction, common: Parents) -> None:
    own = flags()
    own.add_argument("dataset", choices=["css2d", "emoji", "clipart", "people2d", "folder"],
                     help="what to generate; folder: an example of the own-data format "
                          "(JSON Lines + images) written from a generated emoji dataset")
    own.add_argument("--out", required=True, help="output directory (replaced atomically)")
    own.add_argument("--scale", default="demo", choices=["demo", "paper", "tiny"],
                     help="css2d demo: ~13k/6k images (minutes to train); paper: CSS size, "
                          "~19k images and ~17k queries per split; tiny: for tests. people2d "
                          "demo: 800 identities x 8 images; paper: Market-1501's 1,501 x 17")
    own.add_argument("--seed", type=int, default=0, help="random seed (same seed, same data)")
    own.add_argument("--size", type=int, default=None,
                     help="image side in pixels (css2d 64, emoji / clipart 128)")
    own.add_argument("--limit", type=int, default=None,
                     help="emoji / clipart: only the first N source entries (for a quick look)")
    own.add_argument("--source", default=None, help="folder: the generated emoji directory")
    own.add_argument("--task", default="composed", choices=["composed", "captions", "attributes"],
                     help="folder: which format to write (triplets, captions or attributes)")
    g = sub.add_parser("generate", help="generate a dataset (css2d, emoji, clipart, people2d)",
                       description="css2d: TIRG's CSS benchmark re-created in 2D (scenes of "
                       "objects on a 3x3 grid, add/remove/make texts, held-out colour-shape "
                       "compositions). emoji: Noto Color Emoji rendered from Debian's font "
                       "with CLDR names, keywords, person attributes and composed / text / "
                       "attribute benchmarks. clipart: Debian's openclipart SVGs rendered "
                       "with their titles, keywords and categories. people2d: drawn "
                       "pedestrians with Market-1501's 12 attribute groups, correlated and "
                       "noisily labelled as in the published annotation statistics, several "
                       "images per identity (attribute queries, AIHM).",
                       parents=[own, common.quiet])
    g.set_defaults(func=run)


def run(a: argparse.Namespace) -> None:
    if a.dataset == "folder":
        from tgir.data.folder import write_example

        if not a.source:
            raise TgirError("generate folder needs --source DIR (a generated emoji dataset)")
        out = write_example(a.source, a.out, a.task, limit=a.limit)
        print(f"wrote {out} ({a.task}); next: tgir check {out}")
        return
    if a.dataset == "emoji":
        from tgir.data import emoji

        out = emoji.generate(Path(a.out), size=a.size or 128, seed=a.seed, limit=a.limit,
                             progress=not a.quiet)
        c = emoji.read_annotations(out)["counts"]
        print(f"rendered {c['rendered']} of {c['entries']} emoji; skipped: "
              f"{c['skipped'] or 'none'}; composed queries: {c['composed']}")
        print(f"wrote {out}")
        return
    if a.dataset == "people2d":
        from tgir.data import people2d

        out = people2d.generate(Path(a.out), a.scale, a.seed, progress=not a.quiet,
                                **({"size": a.size} if a.size else {}))
        doc = people2d.read_annotations(out)
        for split in ("train", "test"):
            ids = [i for i in doc["identities"] if i["split"] == split]
            combos = {people2d.combination_key(i["labels"]) for i in ids}
            print(f"{split}: {len(ids)} identities, {sum(len(i['files']) for i in ids)} "
                  f"images, {len(combos)} attribute combinations")
        print(f"wrote {out}")
        return
    if a.dataset == "clipart":
        from tgir.data import clipart

        out = clipart.generate(Path(a.out), size=a.size or 128, limit=a.limit,
                               progress=not a.quiet)
        c = clipart.read_annotations(out)["counts"]
        print(f"rendered {c['rendered']} of {c['svgs']} SVGs; skipped: "
              f"{c['skipped'] or 'none'}; vocabulary {c['vocabulary']} words")
        print(f"wrote {out}")
        return
    from tgir.data import css2d

    out = css2d.generate(Path(a.out), a.scale, a.seed, progress=not a.quiet,
                         **({"image_size": a.size} if a.size else {}))
    doc = css2d.read_annotations(out)
    for name, s in doc["splits"].items():
        print(f"{name}: {len(s['images'])} images, {len(s['queries'])} queries")
    print(f"wrote {out}")
