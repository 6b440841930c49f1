"""MIT-States (Isola et al., CVPR 2015) as set up by TIRG: retrieve an image of the same object
in another state; the text is the target adjective (Zhang et al. Table 5).

Official layout::

    ROOT/images/<adj> <noun>/<name>.jpg        (folders "adj <noun>" are unlabelled; skipped)

The 49 nouns of ``TEST_NOUNS`` (TIRG's list) are the test split, every other noun is train.
Test queries: every test image with every other adjective its noun has, target label the
"<adj> <noun>" caption; the gallery is every test image, the source excluded. Train queries:
every train image with one seeded random other adjective of its noun, target a random image
of that caption (TIRG samples these on the fly).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from tgir import TgirError
from tgir.data.formats.common import check_split, need_dir
from tgir.data.images import load_images
from tgir.data.types import ComposedSplit

TEST_NOUNS = frozenset((
    "armor", "bracelet", "bush", "camera", "candy", "castle", "ceramic", "cheese", "clock",
    "clothes", "coffee", "fan", "fig", "fish", "foam", "forest", "fruit", "furniture", "garden",
    "gate", "glass", "horse", "island", "laptop", "lead", "lightning", "mirror", "orange",
    "paint", "persimmon", "plastic", "plate", "potato", "road", "rubber", "sand", "shell",
    "sky", "smoke", "steel", "stream", "table", "tea", "tomato", "vacuum", "wax", "wheel",
    "window", "wool"))


def load(root: Path, split: str, image_size: int | None = None,
         strict: bool = False) -> ComposedSplit:
    root = Path(root)
    check_split(split, ("train", "test"), "MIT-States")
    folder = need_dir(root / "images", "MIT-States image folder")
    files, adjs, nouns = [], [], []
    for d in sorted(p for p in folder.iterdir() if p.is_dir()):
        parts = d.name.split()
        if len(parts) != 2 or parts[0] == "adj":
            continue
        if (parts[1] in TEST_NOUNS) != (split == "test"):
            continue
        for f in sorted(d.glob("*.jpg")):
            files.append(f)
            adjs.append(parts[0])
            nouns.append(parts[1])
    if not files:
        raise TgirError(f"no MIT-States {split} image under {folder} (folders '<adj> <noun>')")
    captions = [f"{a} {n}" for a, n in zip(adjs, nouns, strict=True)]
    cap_ids: dict[str, int] = {}
    labels = np.array([cap_ids.setdefault(c, len(cap_ids)) for c in captions], dtype=np.int64)
    noun_adjs: dict[str, list[str]] = defaultdict(list)
    by_caption: dict[str, list[int]] = defaultdict(list)
    for i, (a, n) in enumerate(zip(adjs, nouns, strict=True)):
        if a not in noun_adjs[n]:
            noun_adjs[n].append(a)
        by_caption[captions[i]].append(i)
    rng = np.random.default_rng(0)
    src, txt, tgt = [], [], []
    for i, (a, n) in enumerate(zip(adjs, nouns, strict=True)):
        others = [b for b in noun_adjs[n] if b != a]
        if not others:
            continue
        chosen = others if split == "test" else [others[rng.integers(len(others))]]
        for b in chosen:
            cands = by_caption[f"{b} {n}"]
            src.append(i)
            txt.append(b)
            tgt.append(cands[0] if split == "test" else cands[rng.integers(len(cands))])
    if not src:
        raise TgirError(f"MIT-States {split}: no noun has two adjectives")
    return ComposedSplit(
        name=f"mit_states-{split}",
        images=load_images(files, image_size or 224, desc=f"MIT-States {split}",
                           strict=strict),
        labels=labels, query_source=np.array(src, dtype=np.int64), query_text=txt,
        query_target=np.array(tgt, dtype=np.int64),
        image_ids=[f"{c}/{f.stem}" for c, f in zip(captions, files, strict=True)],
        meta={"dataset": "mit_states", "root": str(root), "captions": captions},
    )
