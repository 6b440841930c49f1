"""Shoes (Berg et al. 2010 images, relative captions of Guo et al., NeurIPS 2018), composed
retrieval: Zhang et al. Table 4.

Official layout::

    ROOT/relative_captions_shoes.json
        [{"ImageName": "img_womens_clogs_851.jpg",
          "ReferenceImageName": "img_womens_clogs_512.jpg",
          "RelativeCaption": "is more of a textured material"}, ...]
    ROOT/train_im_names.txt   ROOT/eval_im_names.txt     one image name per line
    ROOT/**/img_womens_clogs_851.jpg                      (attributedata/<category>/...)

A caption belongs to a split when its target and reference images are both in the split's
name list (10,000 train / 4,658 test images, the split of Guo et al.). The gallery is the
split's images, the reference excluded; relevance is the target image.
"""

from __future__ import annotations

from pathlib import Path

from tgir import TgirError
from tgir.data.formats.common import (
    check_split,
    field,
    need_list,
    read_json,
    read_lines,
    target_image_split,
)
from tgir.data.types import ComposedSplit

NAME_FILES = {"train": "train_im_names.txt", "test": "eval_im_names.txt"}


def load(root: Path, split: str, image_size: int | None = None,
         strict: bool = False) -> ComposedSplit:
    root = Path(root)
    check_split(split, NAME_FILES, "Shoes")
    names = read_lines(root / NAME_FILES[split], "Shoes image list")
    index = {n: i for i, n in enumerate(names)}
    cap_file = root / "relative_captions_shoes.json"
    entries = need_list(read_json(cap_file, "Shoes captions"), cap_file, "Shoes captions")
    src, txt, tgt = [], [], []
    for i, e in enumerate(entries):
        target = field(e, "ImageName", cap_file, i, str)
        ref = field(e, "ReferenceImageName", cap_file, i, str)
        caption = field(e, "RelativeCaption", cap_file, i, str)
        if target in index and ref in index and caption.strip():
            src.append(index[ref])
            tgt.append(index[target])
            txt.append(caption.strip())
    if not src:
        raise TgirError(f"{cap_file}: no caption has both images in {NAME_FILES[split]}")
    found = {p.name: p for p in root.rglob("*.jpg")}
    paths = [found.get(n, root / n) for n in names]  # a missing one is reported by name
    return target_image_split(f"shoes-{split}", paths, src, txt, tgt, image_size,
                              f"Shoes {split}", strict, {"dataset": "shoes", "root": str(root)})
