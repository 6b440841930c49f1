"""Market-1501 attributes (Lin et al., 2017; github.com/vana77/Market-1501_Attribute) for
attribute-query search (seed 000 evaluates AIHM on it).

Expected layout (the official downloads, side by side)::

    ROOT/market_attribute.mat      (or ROOT/attribute/market_attribute.mat)
    ROOT/bounding_box_train/0002_c1s1_000451_03.jpg ...
    ROOT/bounding_box_test/0001_c1s1_001051_00.jpg ...

``market_attribute.mat`` holds a struct ``market_attribute`` with ``train`` (751 identities)
and ``test`` (750), each a struct of 1 x N arrays: 27 attribute fields (1 = no / first value,
2 = yes / second value; ``age`` 1-4) and ``image_index`` (the identity ids, "0002").
Attributes are per identity; every image of an identity gets its identity's vector. As in
seed 000 the 27 fields become 12 categorical attributes: gender, hair, up (sleeve), down
(lower-body length), clothes, hat, backpack, bag, handbag, age, and the upper / lower-body
colour (one colour is "yes" per identity; "unknown" when none is). Test images of identities
without attributes (distractors 0000, junk -1) are not in the gallery.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tgir import TgirError
from tgir.data.images import load_images
from tgir.data.types import AttributeSplit

BINARY = {"gender": ("male", "female"), "hair": ("short hair", "long hair"),
          "up": ("long sleeve", "short sleeve"), "down": ("long lower-body", "short lower-body"),
          "clothes": ("dress", "pants"), "hat": ("no hat", "hat"),
          "backpack": ("no backpack", "backpack"), "bag": ("no bag", "bag"),
          "handbag": ("no handbag", "handbag")}
AGE = ("young", "teenager", "adult", "old")
UP_COLORS = ("black", "white", "red", "purple", "yellow", "gray", "blue", "green")
DOWN_COLORS = ("black", "white", "pink", "purple", "yellow", "gray", "blue", "green", "brown")
SCHEMA: dict[str, list[str]] = {
    **{k: list(v) for k, v in BINARY.items()}, "age": list(AGE),
    "upcolor": [*UP_COLORS, "unknown"], "downcolor": [*DOWN_COLORS, "unknown"],
}
FIELDS = [*BINARY, "age", *(f"up{c}" for c in UP_COLORS), *(f"down{c}" for c in DOWN_COLORS),
          "image_index"]


def _mat_path(root: Path) -> Path:
    for p in (root / "market_attribute.mat", root / "attribute" / "market_attribute.mat"):
        if p.is_file():
            return p
    raise TgirError(f"Market-1501 attributes not found: {root / 'market_attribute.mat'} (or "
                    f"attribute/market_attribute.mat) is missing")


def read_attributes(root: Path, split: str) -> dict[str, np.ndarray]:
    """identity id -> value-id vector (12,) for ``split`` (train / test) of the .mat file."""
    try:
        import scipy.io
    except ImportError as e:  # pragma: no cover - a dependency
        raise TgirError("reading .mat files needs scipy") from e
    path = _mat_path(root)
    try:
        top = scipy.io.loadmat(str(path))["market_attribute"][0][0]
        part = top[split][0][0]
    except (KeyError, ValueError, IndexError, OSError) as e:
        raise TgirError(f"{path} has no market_attribute.{split} struct: {e}") from e
    names = set(part.dtype.names or ())
    missing = [f for f in FIELDS if f not in names]
    if missing:
        raise TgirError(f"{path}: market_attribute.{split} lacks the field {missing[0]!r}")
    ids = [str(np.asarray(x).ravel()[0]) for x in part["image_index"][0]]
    n = len(ids)
    col = {f: np.asarray(part[f]).ravel().astype(np.int64) for f in FIELDS[:-1]}
    for f, v in col.items():
        if len(v) != n:
            raise TgirError(f"{path}: field {f!r} of {split} has {len(v)} values for {n} ids")
        hi = 4 if f == "age" else 2
        if v.min() < 1 or v.max() > hi:
            raise TgirError(f"{path}: field {f!r} of {split} has values outside 1..{hi}")
    out = {}
    for i, pid in enumerate(ids):
        row = [col[f][i] - 1 for f in BINARY] + [col["age"][i] - 1]
        for prefix, colors in (("up", UP_COLORS), ("down", DOWN_COLORS)):
            yes = [j for j, c in enumerate(colors) if col[f"{prefix}{c}"][i] == 2]
            row.append(yes[0] if yes else len(colors))  # "unknown"
        out[pid.zfill(4)] = np.array(row, dtype=np.int64)
    return out


def load(root: Path, split: str, image_size: int | None = None,
         strict: bool = False) -> AttributeSplit:
    """Images of ``split``'s identities (bounding_box_train / bounding_box_test) with their
    identity's attributes; ``image_size`` (default 128) squares the 128x64 crops."""
    root = Path(root)
    if split not in ("train", "test"):
        raise TgirError(f"Market-1501 has no split {split!r} (train, test)")
    attrs = read_attributes(root, split)
    folder = root / ("bounding_box_train" if split == "train" else "bounding_box_test")
    if not folder.is_dir():
        raise TgirError(f"Market-1501 image folder not found: {folder}")
    files = sorted(p for p in folder.glob("*.jpg") if p.name.split("_")[0] in attrs)
    if not files:
        raise TgirError(f"no image in {folder} belongs to an identity of "
                        f"market_attribute.{split}")
    return AttributeSplit(
        name=f"market1501-attr-{split}",
        images=load_images(files, image_size or 128, desc=f"market1501 {split}",
                           strict=strict),
        attributes=np.stack([attrs[p.name.split("_")[0]] for p in files]),
        schema={k: list(v) for k, v in SCHEMA.items()},
        image_ids=[p.stem for p in files],
        meta={"dataset": "market1501_attr", "root": str(root),
              "identities": [p.name.split("_")[0] for p in files]},
    )
