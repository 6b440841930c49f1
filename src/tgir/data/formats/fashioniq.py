"""FashionIQ (Wu et al., CVPR 2021), composed retrieval: MAAF Table 2/3 (Dodds et al.) and
Zhang et al. Tables 1-2.

Official layout::

    ROOT/captions/cap.{dress,shirt,toptee}.{train,val,test}.json
        [{"target": "B008BHCT58", "candidate": "B003FGW7MK",
          "captions": ["is solid black with no sleeves", "is black with straps"]}, ...]
    ROOT/image_splits/split.{dress,shirt,toptee}.{train,val,test}.json   ["B00006M009", ...]
    ROOT/images/{asin}.png   (or .jpg)

A query is (candidate image, the two captions joined, target image); the captions are joined
as in CLIP4Cir ("Is solid black with no sleeves and is black with straps"); in train both
orders are kept. Split names: ``train``, ``val``, ``test`` (all three categories) or
``val.dress`` etc. (one category). The gallery is the split's image list (``image_splits``);
per-category R@10 / R@50 and their mean over categories are the protocol
(``meta["category_images"]``: a category's gallery, ``meta["query_category"]``: each
query's category). The public test
captions have no targets; entries without ``target`` are an error, so use ``val`` as the papers
do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tgir import TgirError
from tgir.data.formats.common import check_split, field, find_image, need_list, read_json
from tgir.data.images import load_images
from tgir.data.types import ComposedSplit

CATEGORIES = ("dress", "shirt", "toptee")


def join_captions(a: str, b: str) -> str:
    """CLIP4Cir's joining of FashionIQ's two relative captions."""
    a, b = a.strip(".?, "), b.strip(".?, ")
    return f"{a[:1].upper()}{a[1:]} and {b}" if a and b else (a or b)


def load(root: Path, split: str, image_size: int | None = None,
         strict: bool = False) -> ComposedSplit:
    root = Path(root)
    base, _, cat = split.partition(".")
    check_split(base, ("train", "val", "test"), "FashionIQ")
    cats = (cat,) if cat else CATEGORIES
    for c in cats:
        check_split(c, CATEGORIES, "FashionIQ category")
    asins: list[str] = []
    index: dict[str, int] = {}
    src, txt, tgt, qcat = [], [], [], []
    members: dict[str, list[int]] = {}
    for c in cats:
        img_file = root / "image_splits" / f"split.{c}.{base}.json"
        names = need_list(read_json(img_file, "FashionIQ image split"), img_file,
                          "FashionIQ image split")
        members[c] = []
        for a in names:
            if not isinstance(a, str):
                raise TgirError(f"{img_file}: image names must be strings, got {a!r}")
            members[c].append(index.setdefault(a, len(index)))
            if len(index) > len(asins):
                asins.append(a)
        cap_file = root / "captions" / f"cap.{c}.{base}.json"
        entries = need_list(read_json(cap_file, "FashionIQ captions"), cap_file,
                            "FashionIQ captions")
        for i, e in enumerate(entries):
            cand = field(e, "candidate", cap_file, i, str)
            target = field(e, "target", cap_file, i, str)
            caps = field(e, "captions", cap_file, i, list)
            if not caps or not all(isinstance(x, str) for x in caps):
                raise TgirError(f"{cap_file}: field 'captions' of entry {i} must be a "
                                f"non-empty list of strings")
            for a in (cand, target):
                if a not in index:
                    raise TgirError(f"{cap_file}: entry {i} names image {a!r}, which is not "
                                    f"in {img_file.name}")
            pairs = [(caps[0], caps[-1])]
            if base == "train" and len(caps) > 1:
                pairs.append((caps[-1], caps[0]))
            for a, b in pairs:
                src.append(index[cand])
                tgt.append(index[target])
                txt.append(join_captions(a, b) if len(caps) > 1 else caps[0].strip())
                qcat.append(c)
    paths = [find_image(root / "images", a) for a in asins]
    qcat_arr = np.array(qcat)
    return ComposedSplit(
        name=f"fashioniq-{split}",
        images=load_images(paths, image_size or 224, desc=f"FashionIQ {split}", strict=strict),
        labels=np.arange(len(asins), dtype=np.int64),
        query_source=np.array(src, dtype=np.int64), query_text=txt,
        query_target=np.array(tgt, dtype=np.int64), image_ids=asins,
        meta={"dataset": "fashioniq", "root": str(root), "protocol": "fashioniq",
              "category_images": {c: np.array(members[c], dtype=np.int64) for c in cats},
              "query_category": qcat_arr},
    )
