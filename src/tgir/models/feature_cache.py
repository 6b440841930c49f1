"""Features of a frozen backbone, computed once per image and kept on disk (issue 10).

Every model with a frozen image part says what to cache through ``cache_spec(image_size)``
(a ``CacheSpec``: a key and the function computing the features): composed models their
backbone maps, the attribute models (Dong et al.) the pooled last map, the joint embedding (seed
001) the output of the backbone's never-trained lower blocks. The trainer builds the cache
before training and attaches it as ``model.feature_cache``.

Layout (``ROOT/KEY/``, KEY a digest of the frozen module: class, configuration, weights, input
size and which features, so a change of any of them is a different cache)::

    shard-000/level0.f16 ...   fp16 features (n, ...) per output of the function, memory-mapped
    shard-000/images.json      the images' checksums (SHA-256 of the uint8 pixels), in row order
    meta.json                  backbone key parts, level shapes

A build writes only the images no shard holds yet (a new shard), so a cache is reused across
runs and models with the same backbone and grows with new images. Shards are written to a
temporary name and renamed, so a killed build leaves no half shard.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

FORMAT = 2  # 2: SHA-256 image checksums (1: blake2b); part of every key


def image_digest(pixels: np.ndarray) -> str:
    """Checksum of one uint8 (H, W, 3) image (SHA-256: hardware-accelerated, about 2.5x
    blake2b here)."""
    return hashlib.sha256(np.ascontiguousarray(pixels)).hexdigest()[:32]


def batch_digests(images: torch.Tensor) -> list[str]:
    """``image_digest`` of each image of a float (B, 3, H, W) batch in [0, 1] made from uint8
    pixels (one rounding and one layout change for the whole batch)."""
    px = images.detach().mul(255.0).add_(0.5).to(torch.uint8).permute(0, 2, 3, 1)  # round
    return [image_digest(x) for x in px.contiguous().cpu().numpy()]


def backbone_key(backbone: nn.Module, image_size: int, kind: str = "maps",
                 skip: frozenset[str] = frozenset()) -> str:
    """Digest of what the features depend on: class, output channels, input size, weights
    (the preprocessing, e.g. the mean / std normalisation, lives in the backbone) and
    ``kind``, the name of the features taken from it; state-dict entries named in ``skip``
    (parts the features do not go through) are left out."""
    h = hashlib.sha256()
    h.update(f"{type(backbone).__module__}.{type(backbone).__name__}".encode())
    h.update(json.dumps([list(getattr(backbone, "out_channels", [])), image_size,
                         kind, FORMAT]).encode())
    for name, t in sorted(backbone.state_dict().items()):
        if name in skip:
            continue
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:24]


class CacheSpec(NamedTuple):
    """What a model caches: ``key`` (see ``backbone_key``) and ``extract``, the frozen
    function from a float image batch to a list of feature tensors."""

    key: str
    extract: Callable[[torch.Tensor], list[torch.Tensor]]


def frozen_features(extract: Callable[[torch.Tensor], list[torch.Tensor]],
                    images: torch.Tensor, cache: DiskFeatureCache | None, use_cache: bool
                    ) -> list[torch.Tensor]:
    """``extract(images)`` without a graph, read from ``cache`` instead when ``use_cache`` and
    the cache holds every image (the one read path of all models with a frozen part)."""
    if use_cache and cache is not None:
        got = cache.maps(images)
        if got is not None:
            return got
    with torch.no_grad():
        return extract(images)


def default_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tgir" / "features"


class DiskFeatureCache:
    """fp16, memory-mapped backbone maps keyed by image checksum (see the module doc)."""

    def __init__(self, root: str | Path, key: str):
        self.dir = Path(root) / key
        self.key = key
        self.rows: dict[str, tuple[int, int]] = {}  # digest -> (shard, row)
        self.shards: list[list[np.memmap]] = []
        self.hits = self.misses = 0
        self._open()

    def _open(self) -> None:
        self.rows.clear()
        self.shards = []
        if not self.dir.is_dir():
            return
        meta_path = self.dir / "meta.json"
        if not meta_path.is_file():
            return
        shapes = [tuple(s) for s in json.loads(meta_path.read_text())["shapes"]]
        for d in sorted(self.dir.glob("shard-*")):
            digests = json.loads((d / "images.json").read_text())
            maps = [np.memmap(d / f"level{i}.f16", dtype=np.float16, mode="r",
                              shape=(len(digests), *s)) for i, s in enumerate(shapes)]
            k = len(self.shards)
            self.shards.append(maps)
            for r, dg in enumerate(digests):
                self.rows.setdefault(dg, (k, r))

    def __len__(self) -> int:
        return len(self.rows)

    @torch.no_grad()
    def build(self, extract: Callable[[torch.Tensor], list[torch.Tensor]], images: np.ndarray,
              device: torch.device | str = "cpu", batch_size: int = 64,
              progress: bool = True) -> int:
        """Compute and store ``extract``'s features (a backbone: its maps) of the ``images``
        (uint8 (N, H, W, 3)) not cached yet, on ``device``; returns how many were computed.
        The caller puts the module(s) behind ``extract`` in eval mode."""
        from tgir.data.images import to_tensor_batch

        digests = [image_digest(x) for x in images]
        first: dict[str, int] = {}
        for i, d in enumerate(digests):
            if d not in self.rows and d not in first:
                first[d] = i
        todo = list(first.values())
        if not todo:
            return 0
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".shard-tmp-", dir=self.dir))
        try:
            files: list[np.memmap] = []
            for s in tqdm(range(0, len(todo), batch_size), desc="cache backbone maps",
                          disable=not progress, mininterval=1.0):
                idx = todo[s:s + batch_size]
                maps = extract(to_tensor_batch(images[idx]).to(device))
                if not files:
                    shapes = [tuple(m.shape[1:]) for m in maps]
                    meta = self.dir / "meta.json"
                    if not meta.is_file():
                        meta.write_text(json.dumps({"key": self.key, "shapes": shapes}))
                    files = [np.memmap(tmp / f"level{i}.f16", dtype=np.float16, mode="w+",
                                       shape=(len(todo), *sh)) for i, sh in enumerate(shapes)]
                for f, m in zip(files, maps, strict=True):
                    f[s:s + len(idx)] = m.float().cpu().numpy().astype(np.float16)
            for f in files:
                f.flush()
            (tmp / "images.json").write_text(json.dumps([digests[i] for i in todo]))
            tmp.rename(self.dir / f"shard-{len(list(self.dir.glob('shard-*'))):03d}")
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self._open()
        return len(todo)

    def maps(self, images: torch.Tensor) -> list[torch.Tensor] | None:
        """The cached features of a batch of images (float (B, 3, H, W) in [0, 1] made from
        uint8 pixels), float32 on the images' device, or None when any image is not cached."""
        where = [self.rows.get(d) for d in batch_digests(images)]
        if any(w is None for w in where):
            self.misses += 1
            return None
        self.hits += 1
        out = []
        for lv in range(len(self.shards[0])):
            arr = np.stack([self.shards[k][lv][r] for k, r in where])  # fp16 rows
            out.append(torch.from_numpy(arr).to(images.device).float())
        return out
