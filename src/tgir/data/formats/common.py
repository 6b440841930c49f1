"""Shared checks for the papers' on-disk formats: every file and field is checked, and an error
names the file (and the field / line) that is wrong; nothing falls back silently."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from tgir import TgirError


def need_file(path: Path, what: str) -> Path:
    """``path`` if it is a file, else a one-line error naming it."""
    if not Path(path).is_file():
        raise TgirError(f"{what} not found: {path}")
    return Path(path)


def need_dir(path: Path, what: str) -> Path:
    if not Path(path).is_dir():
        raise TgirError(f"{what} not found: {path}")
    return Path(path)


def read_json(path: Path, what: str) -> Any:
    need_file(path, what)
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise TgirError(f"{what} {path} is not valid JSON: {e}") from e


def read_lines(path: Path, what: str) -> list[str]:
    """Non-empty stripped lines of a text file."""
    need_file(path, what)
    return [ln.strip() for ln in Path(path).read_text(encoding="utf-8").splitlines()
            if ln.strip()]


def read_tsv(path: Path, what: str) -> list[list[str]]:
    need_file(path, what)
    with open(path, newline="", encoding="utf-8") as fh:
        return [row for row in csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE) if row]


def need_list(doc: Any, path: Path, what: str) -> list:
    if not isinstance(doc, list):
        raise TgirError(f"{what} {path} must hold a JSON list, got {type(doc).__name__}")
    return doc


def field(entry: Any, key: str, path: Path, index: int, kind: type | tuple = object) -> Any:
    """``entry[key]``, or an error naming file, entry and field."""
    if not isinstance(entry, dict) or key not in entry:
        raise TgirError(f"{path}: entry {index} lacks the field {key!r}")
    value = entry[key]
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise TgirError(f"{path}: field {key!r} of entry {index} must be {names}, got "
                        f"{type(value).__name__}")
    return value


def find_image(folder: Path, stem: str, exts: Iterable[str] = (".png", ".jpg", ".jpeg")
               ) -> Path:
    """``folder/stem.ext`` for the first extension that exists; the first candidate if none
    does (so the image loader reports it among the missing files, with the others)."""
    cands = [Path(folder) / f"{stem}{e}" for e in exts]
    return next((c for c in cands if c.is_file()), cands[0])


def check_split(split: str, allowed: Iterable[str], dataset: str) -> None:
    allowed = list(allowed)
    if split not in allowed:
        raise TgirError(f"{dataset} has no split {split!r} ({', '.join(allowed)})")


def target_image_split(name: str, paths: list[Path], src: list[int], txt: list[str],
                       tgt: list[int], image_size: int | None, desc: str, strict: bool,
                       meta: dict, default_size: int = 224):
    """A composed split whose relevance is the target image itself (each image its own label):
    Shoes, Birds-to-Words, Spot-the-Diff."""
    from tgir.data.images import load_images
    from tgir.data.types import ComposedSplit

    return ComposedSplit(
        name=name,
        images=load_images(paths, image_size or default_size, desc=desc, strict=strict),
        labels=np.arange(len(paths), dtype=np.int64),
        query_source=np.array(src, dtype=np.int64), query_text=txt,
        query_target=np.array(tgt, dtype=np.int64), image_ids=[Path(p).stem for p in paths],
        meta=meta,
    )
