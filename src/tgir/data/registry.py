"""Dataset registry: ``build(name, root, split)`` (torchreid style)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tgir import TgirError
from tgir.data import clipart, css2d, emoji, folder, people2d
from tgir.data.formats import (
    birds_to_words,
    css,
    cub_flowers,
    fashion200k,
    fashioniq,
    mit_states,
    pedes,
    person_attr,
    peta,
    shoes,
    spot_the_diff,
)
from tgir.data.types import AttributeSplit, ComposedSplit, ItemTextSplit, TextImageSplit

Split = ComposedSplit | AttributeSplit | ItemTextSplit | TextImageSplit
_DATASETS: dict[str, Callable[..., Split]] = {
    "css2d": css2d.load,
    "css2d_attr": css2d.load_attributes,  # scene attributes -> image, zero-shot (Dong et al.)
    "css": css.load,
    "emoji": emoji.load,
    "emoji_attr": emoji.load_attributes,  # attribute set -> image, zero-shot split (Dong et al.)
    # generated pedestrians with Market-1501's attribute schema, correlated and noisy labels,
    # several images per identity, zero-shot split (Dong et al.'s kind of data; issue 22)
    "people2d_attr": people2d.load_attributes,
    "clipart": clipart.load_pairs,  # image <-> catalog metadata words (Sadeh et al.)
    "emoji_pairs": emoji.load_pairs,  # image <-> name + keywords words (Sadeh et al.)
    "css2d_text": css2d.load_text,  # scene description -> scene (Zheng et al.)
    "emoji_text": emoji.load_text,  # emoji name / keywords -> emoji (Zheng et al.)
    "market1501_attr": person_attr.load,  # Market-1501 attributes (Dong et al. real use)
    "duke_attr": person_attr.load_duke,  # DukeMTMC-reID attributes (Dong et al. real use)
    "peta": peta.load,  # PETA.mat, 35 selected attributes (Dong et al. real use)
    # the papers' composed benchmarks (Zhang et al., Dodds et al.), official layouts
    "fashioniq": fashioniq.load,
    "fashion200k": fashion200k.load,
    "shoes": shoes.load,
    "mit_states": mit_states.load,
    "birds_to_words": birds_to_words.load,
    "spot_the_diff": spot_the_diff.load,
    # sentence -> image (Zheng et al. and its fine-grained protocol)
    "cuhk_pedes": pedes.load,
    "icfg_pedes": pedes.load_icfg,
    "rstpreid": pedes.load_rstp,
    "cub": cub_flowers.load,
    "flowers": cub_flowers.load_flowers,
    # a user's own data: JSON Lines beside a folder of images (data/folder.py)
    "folder": folder.load,  # triplets / captions (sentence -> image) / attributes
    "folder_pairs": folder.load_pairs,  # captions as catalog items with words (joint)
}


def names() -> list[str]:
    return sorted(_DATASETS)


def build(name: str, root: str | Path, split: str, image_size: int | None = None,
          strict: bool = False) -> Split:
    """Load ``split`` of dataset ``name`` stored at ``root``. Missing or unreadable image files
    are all reported by name with counts; ``strict`` stops at the first one."""
    if name not in _DATASETS:
        raise TgirError(f"unknown dataset {name!r}; known: {', '.join(names())}")
    root = Path(root)
    if not root.is_dir():
        raise TgirError(f"dataset directory not found: {root}")
    return _DATASETS[name](root, split, image_size, strict=strict)
