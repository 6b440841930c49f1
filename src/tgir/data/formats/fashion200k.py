"""Fashion200k (Han et al., ICCV 2017) as used by TIRG, MAAF (Dodds et al. Table 7) and
Zhang et al. Table 3: pairs of product images whose descriptions differ in one word, with the text
"replace X with Y".

Official layout::

    ROOT/labels/{dress,jacket,pants,skirt,top}_{train,test}_detect_all.txt
        women/dresses/casual_and_day_dresses/51727804/51727804_0.jpeg<TAB>0.8<TAB>black dress
    ROOT/test_queries.txt        "<source file_path> <target file_path>" per line
    ROOT/women/...               the images, at the file_path of the label files

Test (TIRG protocol): the queries of ``test_queries.txt``; the text is "replace w with w'" for
the first source word missing from the target description and the first target word missing
from the source one; the gallery is every test image, the source excluded; a retrieved image
is correct when its description equals the target's (labels are description ids).
Train: TIRG samples on the fly from "parent" descriptions (one word removed) shared by two or
more descriptions; here every (image, parent) pair gets one query, its target a seeded random
image of a sibling description, so the query list is fixed and reproducible.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from tgir import TgirError
from tgir.data.formats.common import check_split, need_dir, read_lines
from tgir.data.images import load_images
from tgir.data.types import ComposedSplit

CATEGORIES = ("dress", "jacket", "pants", "skirt", "top")


def different_word(source: str, target: str) -> str:
    """TIRG's modification text for two descriptions that differ in one word."""
    s, t = source.split(), target.split()
    sw = next((w for w in s if w not in t), s[-1] if s else "")
    tw = next((w for w in t if w not in s), t[-1] if t else "")
    return f"replace {sw} with {tw}"


def read_labels(root: Path, split: str) -> tuple[list[str], list[str]]:
    """(file paths, descriptions) of every label file of ``split``, in category order."""
    folder = need_dir(root / "labels", "Fashion200k label folder")
    files, captions = [], []
    for c in CATEGORIES:
        path = folder / f"{c}_{split}_detect_all.txt"
        for n, line in enumerate(read_lines(path, "Fashion200k label file"), 1):
            parts = line.split("\t")
            if len(parts) < 3 or not parts[2].strip():
                raise TgirError(f"{path}, line {n}: expected file_path<TAB>score<TAB>"
                                f"description, got {line[:80]!r}")
            files.append(parts[0].strip())
            captions.append(" ".join(parts[2].split()))
    return files, captions


def _train_queries(captions: list[str], seed: int = 0
                   ) -> tuple[list[int], list[str], list[int]]:
    by_caption: dict[str, list[int]] = defaultdict(list)
    for i, c in enumerate(captions):
        by_caption[c].append(i)
    children: dict[str, set[str]] = defaultdict(set)
    for c in by_caption:
        words = c.split()
        for j in range(len(words)):
            children[" ".join(words[:j] + words[j + 1:])].add(c)
    rng = np.random.default_rng(seed)
    src, txt, tgt = [], [], []
    for parent in sorted(children):
        kids = sorted(children[parent])
        if len(kids) < 2:
            continue
        for c in kids:
            others = [k for k in kids if k != c]
            for i in by_caption[c]:
                other = others[rng.integers(len(others))]
                src.append(i)
                tgt.append(by_caption[other][rng.integers(len(by_caption[other]))])
                txt.append(different_word(c, other))
    return src, txt, tgt


def load(root: Path, split: str, image_size: int | None = None,
         strict: bool = False) -> ComposedSplit:
    root = Path(root)
    check_split(split, ("train", "test"), "Fashion200k")
    files, captions = read_labels(root, split)
    caption_ids: dict[str, int] = {}
    labels = np.array([caption_ids.setdefault(c, len(caption_ids)) for c in captions],
                      dtype=np.int64)
    if split == "test":
        index = {f: i for i, f in enumerate(files)}
        qfile = root / "test_queries.txt"
        src, txt, tgt = [], [], []
        for n, line in enumerate(read_lines(qfile, "Fashion200k test query file"), 1):
            parts = line.split()
            if len(parts) != 2:
                raise TgirError(f"{qfile}, line {n}: expected '<source> <target>'")
            for p in parts:
                if p not in index:
                    raise TgirError(f"{qfile}, line {n}: image {p} is not in the test labels")
            s, t = index[parts[0]], index[parts[1]]
            src.append(s)
            tgt.append(t)
            txt.append(different_word(captions[s], captions[t]))
    else:
        src, txt, tgt = _train_queries(captions)
        if not src:
            raise TgirError(f"Fashion200k {split}: no two descriptions differ in one word")
    return ComposedSplit(
        name=f"fashion200k-{split}",
        images=load_images([root / f for f in files], image_size or 224,
                           desc=f"Fashion200k {split}", strict=strict),
        labels=labels, query_source=np.array(src, dtype=np.int64), query_text=txt,
        query_target=np.array(tgt, dtype=np.int64),
        image_ids=[Path(f).stem for f in files],
        meta={"dataset": "fashion200k", "root": str(root), "captions": captions},
    )
