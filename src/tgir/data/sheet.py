"""Contact sheets: a PNG grid of a dataset's images with their captions (``tgir show``)."""

from __future__ import annotations

import json
import random
import textwrap
from pathlib import Path

from PIL import Image, ImageDraw

from tgir import TgirError
from tgir.data.images import decode_image
from tgir.data.sources import source_at


def _css2d_entries(root: Path, split: str) -> tuple[list, list]:
    from tgir.data import css2d

    s = css2d.read_annotations(root)["splits"][split]
    ims = s["images"]
    cap = [(im["file"], ", ".join(f"{o['size']} {o['color']} {o['shape']}"
                                  for o in im["objects"])) for im in ims]
    pairs = [(ims[q["source"]]["file"], q["text"], ims[q["target"]]["file"])
             for q in s["queries"]]
    return cap, pairs


def _emoji_entries(root: Path, split: str) -> tuple[list, list]:
    from tgir.data import emoji

    doc = emoji.read_annotations(root)
    by_id = {it["id"]: it for it in doc["items"]}
    cap = [(it["file"], it["name"]) for it in doc["items"] if it["split"] == split]
    pairs = [(by_id[p["source"]]["file"], p["text"], by_id[p["target"]]["file"])
             for p in doc["composed"][split]]
    return cap, pairs


def _clipart_entries(root: Path, split: str) -> tuple[list, list]:
    doc = json.loads((root / "clipart.json").read_text())
    return [(it["file"], it["title"]) for it in doc["items"]], []


# data/sources.py's generated datasets -> ([(image file, caption)], [(source, text, target)])
SHEET_ENTRIES = {"css2d": _css2d_entries, "emoji": _emoji_entries, "clipart": _clipart_entries}


def _entries(root: Path, split: str) -> tuple[str, list[tuple[str, str]], list[tuple]]:
    """(dataset name, [(image file, caption)], [(source file, text, target file)])."""
    src = source_at(root)
    if src is None or src.name not in SHEET_ENTRIES:
        raise TgirError(f"{root} holds no dataset tgir draws a sheet of ("
                        + ", ".join(f"{n}.json" for n in SHEET_ENTRIES) + ")")
    return (src.name, *SHEET_ENTRIES[src.name](root, split))


def contact_sheet(root: Path, out: Path | None = None, n: int = 48, seed: int = 0,
                  split: str = "test", cell: int = 112, cols: int = 8) -> Path:
    root = Path(root)
    name, caps, pairs = _entries(root, split)
    rng = random.Random(seed)
    caps = rng.sample(caps, min(n, len(caps)))
    pairs = rng.sample(pairs, min(4, len(pairs)))
    rows = (len(caps) + cols - 1) // cols
    capt_h, pad = 30, 6
    pair_h = (cell + capt_h + pad) if pairs else 0
    w = cols * (cell + pad) + pad
    h = 28 + rows * (cell + capt_h + pad) + (24 + pair_h * ((len(pairs) + 1) // 2) if pairs
                                              else 0)
    sheet = Image.new("RGB", (w, h), (245, 245, 245))
    d = ImageDraw.Draw(sheet)
    d.text((pad, 8), f"{name} {split}: {len(caps)} random images ({root})", fill=(0, 0, 0))
    for i, (f, c) in enumerate(caps):
        x, y = pad + (i % cols) * (cell + pad), 28 + (i // cols) * (cell + capt_h + pad)
        sheet.paste(Image.fromarray(decode_image(root / f, cell)), (x, y))
        for j, line in enumerate(textwrap.wrap(c, 20)[:2]):
            d.text((x, y + cell + 2 + 12 * j), line, fill=(40, 40, 40))
    if pairs:
        y0 = 28 + rows * (cell + capt_h + pad) + 6
        d.text((pad, y0), "composed queries: source + text -> target", fill=(0, 0, 0))
        for i, (sf, t, tf) in enumerate(pairs):
            x = pad + (i % 2) * (w // 2)
            y = y0 + 18 + (i // 2) * pair_h
            sheet.paste(Image.fromarray(decode_image(root / sf, cell)), (x, y))
            d.text((x + cell + 6, y + cell // 2 - 6), f"+ {t[:28]} ->", fill=(20, 60, 160))
            sheet.paste(Image.fromarray(decode_image(root / tf, cell)), (x + cell + 200, y))
    out = Path(out) if out else root / "contact_sheet.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return out
