"""Catalogs: the items a search index holds (an image file, a text, metadata).

A catalog is either a dataset directory tgir knows (css2d: one split's images, with a text that
describes the scene; emoji / clipart: one split's items, or "all", with their names / titles;
people2d: one split's images with their annotated attributes)
or any folder of images (every .png/.jpg/.jpeg/.webp/.bmp below it; an
optional ``catalog.jsonl`` with ``{"file", "id"?, "text"?}`` lines names and describes them).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tgir import TgirError
from tgir.data.sources import source_at

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


@dataclass
class CatalogItem:
    id: str
    file: str  # relative to the catalog root
    text: str = ""
    meta: dict = field(default_factory=dict)


def _css2d_items(root: Path, split: str) -> list[CatalogItem]:
    from tgir.data import css2d

    doc = css2d.read_annotations(root)
    if split.startswith("attr-"):  # the zero-shot attribute split over both css2d splits
        return [CatalogItem(Path(im["file"]).stem, im["file"], " ".join(a.values()),
                            {"label": im["label"], "attributes": a})
                for im, a, s in css2d.attribute_items(doc) if s == split[5:]]
    if split not in doc["splits"]:
        raise TgirError(f"css2d at {root} has no split {split!r}")
    items = []
    for im in doc["splits"][split]["images"]:
        objs = sorted(im["objects"], key=lambda o: o["cell"])
        text = ", ".join(f"{css2d.position_word(tuple(o['cell']))} {o['size']} {o['color']} "
                         f"{o['shape']}" for o in objs)
        items.append(CatalogItem(Path(im["file"]).stem, im["file"], text,
                                 {"label": im["label"], "split": split}))
    return items


def _people2d_items(root: Path, split: str) -> list[CatalogItem]:
    """people2d images of ``split`` (train / test / all), each with its identity's annotated
    attributes as its text."""
    from tgir.data import people2d

    doc = people2d.read_annotations(root)
    if split not in ("train", "test", "all"):
        raise TgirError(f"people2d at {root} has no split {split!r} (train, test, all)")
    return [CatalogItem(Path(f).stem, f, ", ".join(i["labels"][a] for a in people2d.ATTRIBUTES),
                        {"identity": str(i["id"]), "split": i["split"]})
            for i in doc["identities"] if split in ("all", i["split"]) for f in i["files"]]


def catalog_split(dataset: str, split: str) -> str:
    """The catalog split that holds a dataset's ``split``: the person emoji of the zero-shot
    attribute split are ``attr-test`` / ``attr-train`` of the emoji catalog."""
    return f"attr-{split}" if dataset in ("emoji_attr", "css2d_attr") else split


def _annotated_items(root: Path, name: str, split: str) -> list[CatalogItem]:
    """emoji / clipart items of ``split`` ("all" for every item; for emoji, ``attr-test`` /
    ``attr-train``: the person emoji of the zero-shot attribute split)."""
    if name == "emoji":
        from tgir.data.emoji import read_annotations
    else:
        from tgir.data.clipart import read_annotations
    doc = read_annotations(root)
    out = []
    for it in doc["items"]:
        if split.startswith("attr-"):
            if not it.get("attributes") or it.get("attr_split") != split[5:]:
                continue
        elif split != "all" and it["split"] != split:
            continue
        if name == "clipart":  # title + category path: the metadata Sadeh et al. trains on
            from tgir.data.clipart import item_text

            text = item_text(it)
        else:
            text = it.get("name") or it.get("title", "")
        meta = {k: it[k] for k in ("group", "subgroup", "keywords", "attributes", "categories",
                                   "split") if k in it}
        out.append(CatalogItem(it["id"], it["file"], text, meta))
    return out


def _folder_items(root: Path) -> list[CatalogItem]:
    listing = root / "catalog.jsonl"
    items: list[CatalogItem] = []
    if listing.is_file():
        for n, line in enumerate(listing.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
                f = str(d["file"])
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise TgirError(f"{listing} line {n} is not a {{\"file\": ...}} object") from e
            items.append(CatalogItem(str(d.get("id") or Path(f).with_suffix("").as_posix()
                                         .replace("/", "__")), f, str(d.get("text", "")),
                                     {k: v for k, v in d.items()
                                      if k not in ("id", "file", "text")}))
    elif (root / "captions.jsonl").is_file() or (root / "attributes.jsonl").is_file():
        items = _annotated_folder_items(root)
    else:
        files = [p.relative_to(root).as_posix() for p in sorted(root.rglob("*"))
                 if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                 and not any(part.startswith(".") for part in p.relative_to(root).parts)]
        stems = [Path(f).with_suffix("").as_posix().replace("/", "__") for f in files]
        twice = {s for s, n in Counter(stems).items() if n > 1}
        for f, stem in zip(files, stems, strict=True):
            # cat.png + cat.jpg: both kept, their ids keep the extension (cat.png, cat.jpg)
            items.append(CatalogItem(f.replace("/", "__") if stem in twice else stem, f))
    return items


def _annotated_folder_items(root: Path) -> list[CatalogItem]:
    """A user's captions / attributes folder (data/folder.py) as a catalog: one item per
    image, with its first caption as text and its attributes in meta."""
    from tgir.data.folder import parse

    task, keyed, problems = parse(root)
    problems.raise_if_any(root)
    by_file: dict[str, CatalogItem] = {}
    for _, d, _ in keyed:
        f = d["file"]
        if f not in by_file:
            meta = {"attributes": d["attributes"]} if "attributes" in d else {}
            if "id" in d:
                meta["identity"] = str(d["id"])
            by_file[f] = CatalogItem(Path(f).with_suffix("").as_posix().replace("/", "__"), f,
                                     d.get("text", ""), meta)
    return list(by_file.values())


SOURCE_ITEMS = {  # data/sources.py's generated datasets -> their catalog items
    "css2d": _css2d_items, "people2d": _people2d_items,
    "emoji": lambda root, split: _annotated_items(root, "emoji", split),
    "clipart": lambda root, split: _annotated_items(root, "clipart", split)}


def read_catalog(root: str | Path, split: str = "test", missing_ok: bool = False
                 ) -> tuple[str, list[CatalogItem]]:
    """(kind, items) of the catalog at ``root``; ``split`` picks a dataset's split.
    ``missing_ok`` keeps items whose file is gone (``--add`` drops them from an index)."""
    root = Path(root)
    if not root.is_dir():
        raise TgirError(f"catalog directory not found: {root}")
    src = source_at(root)
    if src is not None:  # a generated dataset: its own items and texts
        kind, items = src.name, SOURCE_ITEMS[src.name](root, split)
    else:
        kind, items = "folder", _folder_items(root)
    if not items:
        raise TgirError(f"no images found in catalog {root}")
    seen: set[str] = set()
    for it in items:
        if it.id in seen:
            raise TgirError(f"catalog {root} has the id {it.id!r} twice")
        seen.add(it.id)
        f = (root / it.file).resolve()
        if not f.is_relative_to(root.resolve()):
            raise TgirError(f"catalog item {it.id!r} points outside the catalog: {it.file}")
        if not f.is_file() and not missing_ok:
            raise TgirError(f"catalog image not found: {root / it.file}")
    return kind, items
