"""PETA (Deng et al., ACM MM 2014) pedestrian attributes for attribute-query search (Dong et al.'s
person-attribute setting), in the ``PETA.mat`` of Li et al.'s pedestrian-attribute release
(github.com/dangweili/pedestrian-attribute-recognition-pytorch).

Layout::

    ROOT/PETA.mat          struct ``peta``: data (19000 x (4 + 105): four id columns, then the
                           105 binary attributes), attribute (105 x 1 cell of names),
                           selected_attribute (the 35 used by the community, 1-based),
                           partion_attribute (5 x 1 cell of structs with train / val / test
                           image numbers, 1-based)
    ROOT/images/00001.png  image k is row k of ``data``

The 35 selected attributes become 35 two-valued attributes ("no <name>" / "<name>"), and every
distinct combination of a split is an attribute query (AIHM protocol). Splits: ``train``,
``val``, ``test``, ``trainval`` of partition 0, or ``test.3`` etc. for partition 3.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tgir import TgirError
from tgir.data.formats.common import need_file
from tgir.data.images import load_images
from tgir.data.types import AttributeSplit

FIELDS = ("data", "attribute", "selected_attribute", "partion_attribute")


def _field(struct, name: str, pos: int, path: Path):
    names = struct.dtype.names or ()
    if names and name not in names:
        raise TgirError(f"{path}: struct peta lacks the field {name!r}")
    return struct[name] if names else struct[pos]


def read_peta(root: Path) -> tuple[np.ndarray, list[str], np.ndarray, list[dict]]:
    """(attribute matrix (N, 105) of 0/1, names, selected columns (0-based), partitions)."""
    import scipy.io

    path = need_file(Path(root) / "PETA.mat", "PETA annotation file")
    try:
        peta = scipy.io.loadmat(str(path))["peta"][0][0]
    except (KeyError, ValueError, IndexError, OSError) as e:
        raise TgirError(f"{path} has no struct 'peta': {e}") from e
    data, names, selected, parts = (_field(peta, f, i, path) for i, f in enumerate(FIELDS))
    names = [str(np.asarray(n).ravel()[0]) for n in np.asarray(names).ravel()]
    data = np.asarray(data)
    if data.ndim != 2 or data.shape[1] != 4 + len(names):
        raise TgirError(f"{path}: peta.data is {data.shape}, expected (N, {4 + len(names)}) for "
                        f"{len(names)} attribute names")
    attrs = data[:, 4:].astype(np.int64)
    if not np.isin(attrs, (0, 1)).all():
        raise TgirError(f"{path}: peta.data has attribute values other than 0 / 1")
    selected = np.asarray(selected).ravel().astype(np.int64) - 1
    if len(selected) == 0 or selected.min() < 0 or selected.max() >= len(names):
        raise TgirError(f"{path}: peta.selected_attribute is outside 1..{len(names)}")
    partitions = []
    for k, cell in enumerate(np.asarray(parts).ravel()):
        s = np.asarray(cell).ravel()[0]
        p = {}
        for j, key in enumerate(("train", "val", "test")):
            v = s[key] if s.dtype.names and key in s.dtype.names else s[j]
            idx = np.asarray(v).ravel()
            while idx.dtype == object and len(idx):
                idx = np.asarray(idx[0]).ravel()
            idx = idx.astype(np.int64) - 1
            if len(idx) and (idx.min() < 0 or idx.max() >= len(data)):
                raise TgirError(f"{path}: partition {k} {key} has image numbers outside "
                                f"1..{len(data)}")
            p[key] = idx
        p["trainval"] = np.concatenate([p["train"], p["val"]])
        partitions.append(p)
    return attrs, names, selected, partitions


def load(root: Path, split: str, image_size: int | None = None,
         strict: bool = False) -> AttributeSplit:
    root = Path(root)
    base, _, k = split.partition(".")
    attrs, names, selected, partitions = read_peta(root)
    if base not in ("train", "val", "test", "trainval"):
        raise TgirError(f"PETA has no split {split!r} (train, val, test, trainval, or e.g. "
                        f"test.2 for partition 2)")
    part = int(k) if k.isdigit() else 0 if not k else -1
    if not 0 <= part < len(partitions):
        raise TgirError(f"PETA has partitions 0..{len(partitions) - 1}, not {k!r}")
    idx = np.sort(partitions[part][base])
    schema = {names[j]: [f"no {names[j]}", names[j]] for j in selected}
    return AttributeSplit(
        name=f"peta-{split}",
        images=load_images([root / "images" / f"{i + 1:05d}.png" for i in idx],
                           image_size or 128, desc=f"PETA {split}", strict=strict),
        attributes=attrs[idx][:, selected], schema=schema,
        image_ids=[f"{i + 1:05d}" for i in idx],
        meta={"dataset": "peta", "root": str(root), "partition": part},
    )
