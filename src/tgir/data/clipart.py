"""clipart: Debian's openclipart SVGs rendered to PNG, with their noisy catalog text.

Every SVG below ``/usr/share/openclipart/svg`` (Debian ``openclipart-svg``; duplicates that the
package files under several categories are merged, their categories joined) is rendered with
cairosvg onto a white square. A file that fails to parse or render is skipped and counted by
reason; one bad file never stops the run. Each item keeps its Dublin Core title, its keywords
(``dc:subject``), its description and its categories (the folders it sits in): a catalog with
noisy metadata like the retail catalog of Sadeh et al..

``DIR/clipart.json`` also holds a train/test split for text queries (title -> image) and the
catalog vocabulary with word counts (Sadeh et al. §4.1 keeps words above a frequency threshold).
"""

from __future__ import annotations

import hashlib
import io
import json
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from tgir import TgirError
from tgir.data.store import atomic_dir, read_json_doc
from tgir.data.text import tokenize

SVG_ROOT = Path("/usr/share/openclipart/svg")
FORMAT, VERSION = "tgir-clipart", 1
NS = {"dc": "http://purl.org/dc/elements/1.1/", "cc": "http://creativecommons.org/ns#",
      "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
      "svg": "http://www.w3.org/2000/svg"}


def svg_metadata(data: bytes, fallback_title: str) -> dict:
    """Title, keywords and description from an SVG's RDF metadata (empty when absent)."""
    root = ET.fromstring(data)
    work = root.find(".//cc:Work", NS)
    title, desc, keywords = "", "", []
    if work is not None:
        t = work.find("dc:title", NS)
        title = (t.text or "").strip() if t is not None else ""
        dsc = work.find("dc:description", NS)
        desc = (dsc.text or "").strip() if dsc is not None else ""
        keywords = [(li.text or "").strip() for li in work.findall("dc:subject//rdf:li", NS)]
    if not title:
        t = root.find("svg:title", NS)
        title = (t.text or "").strip() if t is not None else ""
    return {"title": title or fallback_title.replace("_", " "),
            "keywords": [k for k in keywords if k], "description": desc}


def render_svg(data: bytes, size: int) -> Image.Image:
    """Render SVG bytes onto a white size x size square (aspect kept)."""
    import cairosvg

    png = cairosvg.svg2png(bytestring=data, output_width=size, unsafe=False)
    im = Image.open(io.BytesIO(png))
    im.load()
    im = im.convert("RGBA")
    im.thumbnail((size, size), Image.LANCZOS)
    bg = Image.new("RGBA", (size, size), (255, 255, 255, 255))
    bg.alpha_composite(im, ((size - im.width) // 2, (size - im.height) // 2))
    return bg.convert("RGB")


def _collect(svg_root: Path) -> list[tuple[Path, list[str], bytes]]:
    """Unique SVG files (by content) with the categories they appear under."""
    if not svg_root.is_dir():
        raise TgirError(f"{svg_root} not found: install Debian's openclipart-svg")
    by_hash: dict[str, tuple[Path, list[str], bytes]] = {}
    for p in sorted(svg_root.rglob("*.svg")):
        if not p.is_file():
            continue
        data = p.read_bytes()
        h = hashlib.sha1(data).hexdigest()
        cat = p.parent.relative_to(svg_root).as_posix()
        if h in by_hash:
            if cat not in by_hash[h][1]:
                by_hash[h][1].append(cat)
        else:
            by_hash[h] = (p, [cat], data)
    return list(by_hash.values())


def generate(out: Path, size: int = 128, limit: int | None = None, seed: int = 0,
             test_fraction: float = 0.2, min_count: int = 5, svg_root: Path = SVG_ROOT,
             progress: bool = True) -> Path:
    """Render the clipart catalog into ``out`` (atomically) and write ``clipart.json``."""
    from tqdm import tqdm

    files = _collect(Path(svg_root))
    if limit:
        files = files[:limit]
    out = Path(out)
    skipped: Counter = Counter()
    items: list[dict] = []
    with atomic_dir(out) as tmp:
        (tmp / "images").mkdir()
        for path, cats, data in tqdm(files, desc="clipart", disable=not progress,
                                     mininterval=1.0):
            try:
                meta = svg_metadata(data, path.stem)
            except ET.ParseError:
                skipped["not well-formed XML"] += 1
                continue
            try:
                im = render_svg(data, size)
            except Exception as e:  # noqa: BLE001 - cairosvg raises many kinds; count each
                skipped[f"render failed ({type(e).__name__})"] += 1
                continue
            if np.asarray(im).min() >= 250:
                skipped["rendered blank"] += 1
                continue
            iid = hashlib.sha1(data).hexdigest()[:12]
            file = f"images/{iid}.png"
            im.save(tmp / file)
            h = int(hashlib.sha256(f"{seed}:{iid}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
            items.append({"id": iid, "file": file, "svg": str(path), **meta,
                          "categories": sorted(cats),
                          "split": "test" if h < test_fraction else "train"})
        counts = Counter(w for it in items if it["split"] == "train"
                         for w in tokenize(" ".join([it["title"], *it["keywords"]])))
        vocab = {w: c for w, c in sorted(counts.items(), key=lambda x: (-x[1], x[0]))
                 if c >= min_count}
        doc = {"format": FORMAT, "version": VERSION,
               "params": {"size": size, "limit": limit, "seed": seed,
                          "test_fraction": test_fraction, "min_count": min_count,
                          "svg_root": str(svg_root)},
               "counts": {"svgs": len(files), "rendered": len(items), "skipped": dict(skipped),
                          "vocabulary": len(vocab)},
               "vocabulary": vocab, "items": items}
        (tmp / "clipart.json").write_text(json.dumps(doc, ensure_ascii=False))
    return out


def read_annotations(root: Path) -> dict:
    return read_json_doc(root, "clipart.json", FORMAT, VERSION, "clipart")


def item_text(it: dict) -> str:
    """An item's catalog metadata as one text: title, keywords, description and its category
    path ("tools/weapons" -> "tools, weapons"; Debian's SVGs carry little else)."""
    cats = ", ".join(part.replace("_", " ").replace("-", " ") for c in it.get("categories", [])
                     for part in c.split("/"))
    return ". ".join(x for x in [it.get("title", ""), ", ".join(it.get("keywords", [])),
                                 it.get("description", ""), cats] if x)


def catalog_words(root: Path, min_count: int = 5) -> dict:
    """Sadeh et al. §4.1 over the catalog (tokenise, stem, noun / adjective filter, frequency
    threshold on the train split), cached beside ``clipart.json``."""
    from tgir.data.catalog_words import cached_vocabulary

    items = read_annotations(root)["items"]
    return cached_vocabulary(root, [it["id"] for it in items], [item_text(it) for it in items],
                             [it["split"] == "train" for it in items], min_count, "v2")


def load_pairs(root: Path, split: str, image_size: int | None = None,
               strict: bool = False):
    """Image-text pairs of ``split`` for the joint embedding of Sadeh et al.: each item's image and
    its metadata words (title + category path)."""
    from tgir.data.catalog_words import pairs_split

    root = Path(root)
    doc = read_annotations(root)
    if split not in ("train", "test"):
        raise TgirError(f"clipart at {root} has no split {split!r} (train, test)")
    items = [it for it in doc["items"] if it["split"] == split]
    return pairs_split(f"clipart-{split}", root, items, [item_text(it) for it in items],
                       catalog_words(root), image_size, strict,
                       {"dataset": "clipart", "categories": [it["categories"] for it in items]})
