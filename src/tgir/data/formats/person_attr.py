"""Identity-level person attributes of Lin et al. (2017) for attribute-query search (Dong et al.
evaluates AIHM on them): Market-1501 (github.com/vana77/Market-1501_Attribute) and
DukeMTMC-reID (github.com/vana77/DukeMTMC-attribute, ``duke_attribute.mat``, the same layout
with 8 binary fields, no age, 8 upper / 7 lower colours).

Expected layout (the official downloads, side by side)::

    ROOT/market_attribute.mat      (or ROOT/attribute/market_attribute.mat)
    ROOT/bounding_box_train/0002_c1s1_000451_03.jpg ...
    ROOT/bounding_box_test/0001_c1s1_001051_00.jpg ...

``market_attribute.mat`` holds a struct ``market_attribute`` with ``train`` (751 identities)
and ``test`` (750), each a struct of 1 x N arrays: 27 attribute fields (1 = no / first value,
2 = yes / second value; ``age`` 1-4) and ``image_index`` (the identity ids, "0002").
Attributes are per identity; every image of an identity gets its identity's vector. As in
Dong et al. the 27 fields become 12 categorical attributes: gender, hair, up (sleeve), down
(lower-body length), clothes, hat, backpack, bag, handbag, age, and the upper / lower-body
colour (one colour is "yes" per identity; "unknown" when none is). Test images of identities
without attributes (distractors 0000, junk -1) are not in the gallery.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tgir import TgirError
from tgir.data.images import load_images
from tgir.data.types import AttributeSplit


@dataclass(frozen=True)
class Spec:
    """One identity-level attribute release: its .mat file / struct and its fields."""

    name: str
    struct: str  # the .mat file is {struct}.mat, the top-level variable {struct}
    binary: dict[str, tuple[str, str]]  # field -> (value for 1, value for 2)
    up_colors: tuple[str, ...]
    down_colors: tuple[str, ...]
    age: tuple[str, ...] = ()

    @property
    def schema(self) -> dict[str, list[str]]:
        return {**{k: list(v) for k, v in self.binary.items()},
                **({"age": list(self.age)} if self.age else {}),
                "upcolor": [*self.up_colors, "unknown"],
                "downcolor": [*self.down_colors, "unknown"]}

    @property
    def fields(self) -> list[str]:
        return [*self.binary, *(["age"] if self.age else []),
                *(f"up{c}" for c in self.up_colors), *(f"down{c}" for c in self.down_colors),
                "image_index"]


MARKET = Spec(
    "market1501", "market_attribute",
    {"gender": ("male", "female"), "hair": ("short hair", "long hair"),
     "up": ("long sleeve", "short sleeve"), "down": ("long lower-body", "short lower-body"),
     "clothes": ("dress", "pants"), "hat": ("no hat", "hat"),
     "backpack": ("no backpack", "backpack"), "bag": ("no bag", "bag"),
     "handbag": ("no handbag", "handbag")},
    ("black", "white", "red", "purple", "yellow", "gray", "blue", "green"),
    ("black", "white", "pink", "purple", "yellow", "gray", "blue", "green", "brown"),
    ("young", "teenager", "adult", "old"))
DUKE = Spec(
    "duke", "duke_attribute",
    {"gender": ("male", "female"), "top": ("short upper-body", "long upper-body"),
     "boots": ("no boots", "boots"), "hat": ("no hat", "hat"),
     "backpack": ("no backpack", "backpack"), "bag": ("no bag", "bag"),
     "handbag": ("no handbag", "handbag"), "shoes": ("dark shoes", "light shoes")},
    ("black", "white", "red", "purple", "gray", "blue", "green", "brown"),
    ("black", "white", "red", "gray", "blue", "green", "brown"))
# kept for readers of the Market release
BINARY, AGE, SCHEMA = MARKET.binary, MARKET.age, MARKET.schema
UP_COLORS, DOWN_COLORS = MARKET.up_colors, MARKET.down_colors


def _mat_path(root: Path, spec: Spec) -> Path:
    for p in (root / f"{spec.struct}.mat", root / "attribute" / f"{spec.struct}.mat"):
        if p.is_file():
            return p
    raise TgirError(f"{spec.name} attributes not found: {root / (spec.struct + '.mat')} (or "
                    f"attribute/{spec.struct}.mat) is missing")


def read_attributes(root: Path, split: str, spec: Spec = MARKET) -> dict[str, np.ndarray]:
    """identity id -> value-id vector for ``split`` (train / test) of the .mat file."""
    try:
        import scipy.io
    except ImportError as e:  # pragma: no cover - a dependency
        raise TgirError("reading .mat files needs scipy") from e
    path = _mat_path(root, spec)
    try:
        top = scipy.io.loadmat(str(path))[spec.struct][0][0]
        part = top[split][0][0]
    except (KeyError, ValueError, IndexError, OSError) as e:
        raise TgirError(f"{path} has no {spec.struct}.{split} struct: {e}") from e
    names = set(part.dtype.names or ())
    missing = [f for f in spec.fields if f not in names]
    if missing:
        raise TgirError(f"{path}: {spec.struct}.{split} lacks the field {missing[0]!r}")
    ids = [str(np.asarray(x).ravel()[0]) for x in part["image_index"][0]]
    n = len(ids)
    col = {f: np.asarray(part[f]).ravel().astype(np.int64) for f in spec.fields[:-1]}
    for f, v in col.items():
        if len(v) != n:
            raise TgirError(f"{path}: field {f!r} of {split} has {len(v)} values for {n} ids")
        hi = len(spec.age) if f == "age" else 2
        if v.min() < 1 or v.max() > hi:
            raise TgirError(f"{path}: field {f!r} of {split} has values outside 1..{hi}")
    out = {}
    for i, pid in enumerate(ids):
        row = [col[f][i] - 1 for f in spec.binary] + ([col["age"][i] - 1] if spec.age else [])
        for prefix, colors in (("up", spec.up_colors), ("down", spec.down_colors)):
            yes = [j for j, c in enumerate(colors) if col[f"{prefix}{c}"][i] == 2]
            row.append(yes[0] if yes else len(colors))  # "unknown"
        out[pid.zfill(4)] = np.array(row, dtype=np.int64)
    return out


def load(root: Path, split: str, image_size: int | None = None, strict: bool = False,
         spec: Spec = MARKET) -> AttributeSplit:
    """Images of ``split``'s identities (bounding_box_train / bounding_box_test) with their
    identity's attributes; ``image_size`` (default 128) squares the person crops."""
    root = Path(root)
    if split not in ("train", "test"):
        raise TgirError(f"{spec.name} has no split {split!r} (train, test)")
    attrs = read_attributes(root, split, spec)
    folder = root / ("bounding_box_train" if split == "train" else "bounding_box_test")
    if not folder.is_dir():
        raise TgirError(f"{spec.name} image folder not found: {folder}")
    files = sorted(p for p in folder.glob("*.jpg") if p.name.split("_")[0] in attrs)
    if not files:
        raise TgirError(f"no image in {folder} belongs to an identity of "
                        f"{spec.struct}.{split}")
    return AttributeSplit(
        name=f"{spec.name}-attr-{split}",
        images=load_images(files, image_size or 128, desc=f"{spec.name} {split}",
                           strict=strict),
        attributes=np.stack([attrs[p.name.split("_")[0]] for p in files]),
        schema=spec.schema,
        image_ids=[p.stem for p in files],
        meta={"dataset": f"{spec.name}_attr", "root": str(root),
              "identities": [p.name.split("_")[0] for p in files]},
    )


def load_duke(root: Path, split: str, image_size: int | None = None,
              strict: bool = False) -> AttributeSplit:
    """DukeMTMC-reID attributes (duke_attribute.mat: 8 binary fields, 8 upper / 7 lower
    colours) over DukeMTMC-reID's bounding_box_train / bounding_box_test."""
    return load(root, split, image_size, strict, spec=DUKE)
