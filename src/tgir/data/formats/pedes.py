"""Text-based person search (Zheng et al.): CUHK-PEDES (Li et al., CVPR 2017) and, in the same
schema, ICFG-PEDES (Ding et al. 2021) and RSTPReid (Zhu et al. 2021).

Official layouts::

    CUHK-PEDES:  ROOT/reid_raw.json      [{"split": "train", "captions": ["..", ".."],
                                           "file_path": "CUHK01/0107002.png",
                                           "processed_tokens": [[..]], "id": 1}, ...]
                 ROOT/imgs/<file_path>
    ICFG-PEDES:  ROOT/ICFG-PEDES.json    the same fields; ROOT/imgs/<file_path>
    RSTPReid:    ROOT/data_captions.json [{"id": 0, "img_path": "0000_c14_0031.jpg",
                                           "captions": [..], "split": "train"}, ...]
                 ROOT/imgs/<img_path>

Every caption is a query; relevance is the person id (every image of the id is correct), the
gallery every image of the split (Zheng et al. §4: Rank-1/5/10; mAP and mINP besides).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tgir import TgirError
from tgir.data.formats.common import field, need_list, read_json
from tgir.data.images import load_images
from tgir.data.types import TextImageSplit


@dataclass(frozen=True)
class Spec:
    name: str
    annotations: str
    path_field: str
    splits: tuple[str, ...]


CUHK_PEDES = Spec("cuhk_pedes", "reid_raw.json", "file_path", ("train", "val", "test"))
ICFG_PEDES = Spec("icfg_pedes", "ICFG-PEDES.json", "file_path", ("train", "test"))
RSTPREID = Spec("rstpreid", "data_captions.json", "img_path", ("train", "val", "test"))


def load(root: Path, split: str, image_size: int | None = None, strict: bool = False,
         spec: Spec = CUHK_PEDES) -> TextImageSplit:
    root = Path(root)
    if split not in spec.splits:
        raise TgirError(f"{spec.name} has no split {split!r} ({', '.join(spec.splits)})")
    path = root / spec.annotations
    entries = need_list(read_json(path, f"{spec.name} annotations"), path,
                        f"{spec.name} annotations")
    files, ids, captions, owner = [], [], [], []
    for i, e in enumerate(entries):
        if field(e, "split", path, i, str) != split:
            continue
        rel = field(e, spec.path_field, path, i, str)
        pid = field(e, "id", path, i, (int, str))
        caps = field(e, "captions", path, i, list)
        try:
            pid = int(pid)
        except ValueError as err:
            raise TgirError(f"{path}: field 'id' of entry {i} is not an integer: {pid!r}") \
                from err
        for c in caps:
            if not isinstance(c, str):
                raise TgirError(f"{path}: a caption of entry {i} is not a string")
            if c.strip():
                captions.append(c.strip())
                owner.append(len(files))
        files.append(rel)
        ids.append(pid)
    if not files:
        raise TgirError(f"{path} has no entry of split {split!r}")
    return TextImageSplit(
        name=f"{spec.name}-{split}",
        images=load_images([root / "imgs" / f for f in files], image_size or 128,
                           desc=f"{spec.name} {split}", strict=strict),
        labels=np.array(ids, dtype=np.int64), captions=captions,
        caption_image=np.array(owner, dtype=np.int64),
        image_ids=[f.replace("/", "_").rsplit(".", 1)[0] for f in files],
        meta={"dataset": spec.name, "root": str(root), "protocol": "person"},
    )


def load_icfg(root: Path, split: str, image_size: int | None = None,
              strict: bool = False) -> TextImageSplit:
    return load(root, split, image_size, strict, spec=ICFG_PEDES)


def load_rstp(root: Path, split: str, image_size: int | None = None,
              strict: bool = False) -> TextImageSplit:
    return load(root, split, image_size, strict, spec=RSTPREID)
