"""CUB-200-2011 and Oxford-102 Flowers with the captions of Reed et al. (CVPR 2016), the
fine-grained text <-> image protocol of Zheng et al.'s related work (zero-shot classes).

Official layout (Reed et al.'s cvpr2016_cub / cvpr2016_flowers releases)::

    ROOT/{train,val,test,trainval}classes.txt   class folder names, one per line
    ROOT/text_c10/<class>/<image>.txt           ten captions, one per line
    CUB:     ROOT/images/<class>/<image>.jpg    (CUB_200_2011/images)
    Flowers: ROOT/jpg/<image>.jpg               (Oxford-102 jpg/)

Splits read their class lists: ``train`` ``trainclasses.txt`` (CUB 100 / Flowers 62 classes,
the split Zheng et al. §4 trains on), ``val``, ``test`` (50 / 20 unseen classes) and
``trainval``. Protocol (``meta["protocol"] = "class"``): a class is queried by the mean
score of its captions; text -> image AP@50 (the share of the 50 best images that
belong to the class, averaged over classes) and image -> text top-1 class accuracy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tgir import TgirError
from tgir.data.formats.common import check_split, need_dir, read_lines
from tgir.data.images import load_images
from tgir.data.types import TextImageSplit

CLASS_FILES = {"train": "trainclasses.txt", "val": "valclasses.txt",
               "test": "testclasses.txt", "trainval": "trainvalclasses.txt"}


def load(root: Path, split: str, image_size: int | None = None, strict: bool = False,
         name: str = "cub") -> TextImageSplit:
    root = Path(root)
    check_split(split, CLASS_FILES, name)
    classes = read_lines(root / CLASS_FILES[split], f"{name} class list")
    text_root = need_dir(root / "text_c10", f"{name} caption folder")
    files, labels, captions, owner = [], [], [], []
    for k, cls in enumerate(classes):
        folder = need_dir(text_root / cls, f"{name} caption folder of class {cls}")
        txts = sorted(folder.glob("*.txt"))
        if not txts:
            raise TgirError(f"{folder} holds no caption file")
        for t in txts:
            img = root / "images" / cls / f"{t.stem}.jpg"
            if not img.is_file() and (root / "jpg").is_dir():
                img = root / "jpg" / f"{t.stem}.jpg"
            caps = [c for c in read_lines(t, f"{name} caption file")]
            if not caps:
                raise TgirError(f"{t} holds no caption")
            for c in caps:
                captions.append(c)
                owner.append(len(files))
            files.append(img)
            labels.append(k)
    return TextImageSplit(
        name=f"{name}-{split}",
        images=load_images(files, image_size or 128, desc=f"{name} {split}", strict=strict),
        labels=np.array(labels, dtype=np.int64), captions=captions,
        caption_image=np.array(owner, dtype=np.int64),
        image_ids=[f.stem for f in files],
        meta={"dataset": name, "root": str(root), "protocol": "class", "classes": classes},
    )


def load_flowers(root: Path, split: str, image_size: int | None = None,
                 strict: bool = False) -> TextImageSplit:
    return load(root, split, image_size, strict, name="flowers")
