"""Reader for the original CSS release of TIRG (Vo et al., CVPR 2019).

Layout::

    ROOT/css_toy_dataset_novel2_small.dup.npy   pickled dict: {split: {"objects_img": [...],
                                                 "mods": [{"from": [...], "to": [...],
                                                 "to_str": "..."}], "labels": [...]?}}
    ROOT/images/css_{split}_{idx:06d}.png

Every (from, to) pair of every mod is a query whose text is the mod's ``to_str``. When the file
has no ``labels`` the label of an image is derived from its objects (identical scenes share one),
which is what the duplicate-aware CSS protocol needs.

The .npy is a pickle (the official format); it is read with an allow-list unpickler
(``tgir.data.safe_npy``), so a tampered file cannot run code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tgir import TgirError
from tgir.data.images import load_images
from tgir.data.safe_npy import load_object_npy
from tgir.data.types import ComposedSplit

NPY_NAME = "css_toy_dataset_novel2_small.dup.npy"


def _object_key(objects: list[dict]) -> tuple:
    return tuple(sorted(
        (round(float(o["pos"][0]), 2), round(float(o["pos"][1]), 2), str(o["color"]),
         str(o["shape"]), str(o["size"])) for o in objects))


def load(root: Path, split: str, image_size: int | None = None,
         strict: bool = False) -> ComposedSplit:
    root = Path(root)
    npy = root / NPY_NAME
    if not npy.is_file():
        raise TgirError(f"CSS annotation file not found: {npy}")
    data = load_object_npy(npy)
    if not isinstance(data, dict):
        raise TgirError(f"CSS annotation file {npy} does not hold a dict of splits")
    if split not in data:
        raise TgirError(f"{npy} has no split {split!r} (has {sorted(data)})")
    d = data[split]
    for key in ("objects_img", "mods"):
        if key not in d:
            raise TgirError(f"{npy}: split {split!r} lacks the field {key!r}")
    n = len(d["objects_img"])
    paths = [root / "images" / f"css_{split}_{i:06d}.png" for i in range(n)]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise TgirError(f"CSS image not found: {missing[0]} ({len(missing)} missing in all)")
    if "labels" in d:
        labels = np.asarray(d["labels"], dtype=np.int64)
    else:
        ids: dict[tuple, int] = {}
        labels = np.array([ids.setdefault(_object_key(o), len(ids)) for o in d["objects_img"]],
                          dtype=np.int64)
    src, txt, tgt = [], [], []
    for m in d["mods"]:
        if len(m["from"]) != len(m["to"]):
            raise TgirError(f"{npy}: a mod has {len(m['from'])} sources, {len(m['to'])} targets")
        for f, t in zip(m["from"], m["to"], strict=True):
            src.append(int(f))
            tgt.append(int(t))
            txt.append(str(m["to_str"]))
    return ComposedSplit(
        name=f"css-{split}",
        images=load_images(paths, image_size, desc=f"CSS {split}", strict=strict),
        labels=labels,
        query_source=np.array(src, dtype=np.int64),
        query_text=txt,
        query_target=np.array(tgt, dtype=np.int64),
        image_ids=[p.stem for p in paths],
        meta={"dataset": "css", "root": str(root), "objects": list(d["objects_img"]),
              # TIRG's "novel" compositions: (colour, shape) pairs of the other splits'
              # scenes that the train split never shows
              "params": {"holdout": _holdout(data)}},
    )


def _holdout(data: dict) -> list[list[str]]:
    pairs = {name: {(str(o["color"]), str(o["shape"])) for objs in d.get("objects_img", [])
                    for o in objs} for name, d in data.items() if isinstance(d, dict)}
    train = pairs.get("train", set())
    return sorted([list(x) for x in set().union(*pairs.values()) - train]) if train else []
