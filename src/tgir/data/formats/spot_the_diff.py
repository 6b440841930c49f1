"""Spot-the-Diff (Jhamtani & Berg-Kirkpatrick, EMNLP 2018) as a composed benchmark (MAAF §3.4,
Table 6): retrieve the second surveillance snapshot from the first and a sentence describing
what changed.

Official layout (github.com/harsh19/spot-the-diff)::

    ROOT/annotations/{train,val,test}.json   [{"img_id": "1", "sentences": ["...", ...]}, ...]
    ROOT/resized_images/{img_id}.png         the "before" image
    ROOT/resized_images/{img_id}_2.png       the "after" image

Each non-empty sentence is a query (source = before, target = after); relevance is the target
image; the gallery is every image of the split, the source excluded (MAAF).
"""

from __future__ import annotations

from pathlib import Path

from tgir import TgirError
from tgir.data.formats.common import (
    check_split,
    field,
    need_list,
    read_json,
    target_image_split,
)
from tgir.data.types import ComposedSplit


def load(root: Path, split: str, image_size: int | None = None,
         strict: bool = False) -> ComposedSplit:
    root = Path(root)
    check_split(split, ("train", "val", "test"), "Spot-the-Diff")
    path = root / "annotations" / f"{split}.json"
    entries = need_list(read_json(path, "Spot-the-Diff annotations"), path,
                        "Spot-the-Diff annotations")
    files, src, txt, tgt = [], [], [], []
    for i, e in enumerate(entries):
        img = str(field(e, "img_id", path, i, (str, int)))
        sentences = field(e, "sentences", path, i, list)
        a = len(files)
        files += [f"{img}.png", f"{img}_2.png"]
        for s in sentences:
            if isinstance(s, str) and s.strip():
                src.append(a), tgt.append(a + 1), txt.append(s.strip())
    if not src:
        raise TgirError(f"{path} has no non-empty sentence")
    return target_image_split(f"spot_the_diff-{split}",
                              [root / "resized_images" / f for f in files], src, txt, tgt,
                              image_size, f"Spot-the-Diff {split}", strict,
                              {"dataset": "spot_the_diff", "root": str(root)})
