"""Composed search against a trained run: reference image + modification text -> top-k items.

The gallery is the run's evaluation split; its embeddings are cached in
``RUN_DIR/gallery_cache.npz``, keyed by the weights' checksum so a retrained model never reuses
stale vectors. (The persistent FAISS index and the HTTP service build on this.)
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from tgir import TgirError
from tgir.data import build
from tgir.data.images import decode_image
from tgir.engine.device import pick_device
from tgir.engine.features import embed_images, embed_queries
from tgir.eval.metrics import topk_excluding
from tgir.models.checkpoint import file_sha256, load_run


@dataclass
class Hit:
    rank: int
    index: int
    id: str
    score: float


class Searcher:
    def __init__(self, run_dir: str | Path, device: str = "auto", progress: bool = True):
        self.run = Path(run_dir)
        self.cfg, self.vocab, self.model = load_run(self.run, pick_device(device))
        self.gallery = build(self.cfg.data.name, self.cfg.data.root, self.cfg.data.eval_split,
                             self.cfg.data.image_size)
        self.size = self.gallery.images.shape[1]
        self.emb = self._gallery_embeddings(progress)

    def _gallery_embeddings(self, progress: bool) -> np.ndarray:
        digest = file_sha256(self.run / "model.safetensors")
        cache = self.run / "gallery_cache.npz"
        if cache.is_file():
            with np.load(cache) as z:
                if str(z["digest"]) == digest and len(z["emb"]) == len(self.gallery.images):
                    return z["emb"]
        emb = embed_images(self.model, self.gallery.images, progress=progress)
        fd, tmp = tempfile.mkstemp(prefix=".gallery_cache.", suffix=".npz", dir=self.run)
        os.close(fd)
        np.savez(tmp, emb=emb, digest=np.array(digest))
        os.replace(tmp, cache)
        return emb

    def search(self, image: str | Path | bytes, text: str, k: int = 10,
               exclude: int | None = None) -> list[Hit]:
        """Top-``k`` gallery items for a reference ``image`` modified by ``text``."""
        if not text or not text.strip():
            raise TgirError("the modification text is empty")
        if k < 1:
            raise TgirError(f"k must be >= 1, got {k}")
        ref = decode_image(image, self.size)
        if exclude is None:
            exclude = self._find_in_gallery(ref)
        q = embed_queries(self.model, self.vocab, ref[None], [text])
        scores = q @ self.emb.T
        top = topk_excluding(scores, k, np.array([-1 if exclude is None else exclude]))[0]
        return [Hit(r + 1, int(i), self.gallery.image_ids[i], float(scores[0, i]))
                for r, i in enumerate(top)]

    def _find_in_gallery(self, ref: np.ndarray) -> int | None:
        """The gallery index of an identical reference image (excluded from its own results)."""
        flat = self.gallery.images.reshape(len(self.gallery.images), -1)
        same = np.flatnonzero((flat == ref.reshape(1, -1)).all(1))
        return int(same[0]) if len(same) else None

    def unknown_words(self, text: str) -> list[str]:
        from tgir.data.text import tokenize

        return [w for w in tokenize(text) if w not in self.vocab.stoi]

    def grid(self, image: str | Path | bytes, text: str, hits: list[Hit], path: Path,
             cell: int = 128) -> Path:
        """Write a PNG: the query image and text, then the results with rank and score."""
        ref = Image.fromarray(decode_image(image, self.size)).resize((cell, cell), Image.NEAREST)
        pad, head = 8, 18
        w = (len(hits) + 1) * (cell + pad) + pad
        canvas = Image.new("RGB", (w, cell + 2 * head + 2 * pad), (235, 235, 235))
        d = ImageDraw.Draw(canvas)
        d.text((pad, pad), f"query: {text}"[: w // 6], fill=(0, 0, 0))
        canvas.paste(ref, (pad, head + pad))
        d.rectangle([pad - 2, head + pad - 2, pad + cell + 1, head + pad + cell + 1],
                    outline=(30, 90, 200), width=2)
        for j, h in enumerate(hits, start=1):
            x = pad + j * (cell + pad)
            im = Image.fromarray(self.gallery.images[h.index]).resize((cell, cell), Image.NEAREST)
            canvas.paste(im, (x, head + pad))
            d.text((x, head + pad + cell + 3), f"#{h.rank} {h.id} {h.score:.2f}", fill=(0, 0, 0))
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        canvas.save(path)
        return path


__all__ = ["Searcher", "Hit"]
