"""emoji: real images with real text, from Debian packages (no download at run time).

Images: every fully-qualified emoji of Unicode's ``emoji-test.txt`` (Debian ``unicode-data``)
that the installed Noto Color Emoji font (Debian ``fonts-noto-color-emoji``) can draw, rendered
with Pillow (``embedded_color=True``) on white. An emoji the font cannot draw as one glyph
(an empty box, or a sequence that falls apart into several glyphs) is detected and skipped.
Names, groups and subgroups come from ``emoji-test.txt`` (the CLDR short names), keywords from
CLDR's ``annotations/en.xml`` (Debian ``unicode-cldr-core``) when installed.

Benchmarks built from it (all in ``DIR/emoji.json``):

- composed (Fashion200k-style, as Zhang et al. / Dodds et al.): pairs that differ in one
  variant attribute —
  skin tone, hair, gender — with a text naming the change ("dark skin tone", "red hair",
  "woman instead of man"); train/test split by *base* (the role or activity), so no test base
  is seen in training;
- text (Zheng et al.): each item's name and keywords;
- attributes (Dong et al.): person emoji get (gender, skin, hair, role) and a zero-shot split in
  which no test attribute combination occurs in training.
"""

from __future__ import annotations

import hashlib
import json
import re
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from tgir import TgirError
from tgir.data.images import load_images
from tgir.data.store import atomic_dir, read_json_doc
from tgir.data.types import AttributeSplit, ComposedSplit

FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
EMOJI_TEST = Path("/usr/share/unicode/emoji/emoji-test.txt")
CLDR_EN = [Path("/usr/share/unicode/cldr/common/annotations/en.xml"),
           Path("/usr/share/unicode/cldr/common/annotationsDerived/en.xml")]
FORMAT, VERSION = "tgir-emoji", 1

SKIN = ("light", "medium-light", "medium", "medium-dark", "dark")
HAIR = ("red hair", "curly hair", "white hair", "bald", "blond hair", "beard")
GENDERS = ("man", "woman", "person")
OTHER_PEOPLE = ("boy", "girl", "child", "older person", "old man", "old woman", "baby")
_LINE = re.compile(r"^([0-9A-F ]+?)\s*;\s*([\w-]+)\s*#\s*(\S+)\s+E[\d.]+\s+(.+)$")


def parse_emoji_test(path: Path = EMOJI_TEST) -> list[dict]:
    """Fully-qualified entries of emoji-test.txt: codepoints, emoji, name, group, subgroup."""
    if not path.is_file():
        raise TgirError(f"{path} not found: install Debian's unicode-data (apt-get install "
                        f"unicode-data)")
    out, group, subgroup = [], "", ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# group:"):
            group = line.split(":", 1)[1].strip()
        elif line.startswith("# subgroup:"):
            subgroup = line.split(":", 1)[1].strip()
        elif line and not line.startswith("#"):
            m = _LINE.match(line)
            if m and m.group(2) == "fully-qualified":
                cps = m.group(1).split()
                out.append({"id": "-".join(c.lower() for c in cps),
                            "emoji": "".join(chr(int(c, 16)) for c in cps),
                            "name": m.group(4).strip(), "group": group, "subgroup": subgroup})
    return out


def cldr_keywords(paths: list[Path] = CLDR_EN) -> dict[str, list[str]]:
    """emoji -> CLDR keywords (empty when the CLDR files are not installed)."""
    kw: dict[str, list[str]] = {}
    for p in paths:
        if not p.is_file():
            continue
        for a in ET.parse(p).getroot().iter("annotation"):
            if a.get("type") != "tts" and a.text:
                key = a.get("cp", "").replace("\ufe0f", "")
                kw.setdefault(key, [w.strip() for w in a.text.split("|") if w.strip()])
    return kw


def parse_attributes(name: str, subgroup: str = "") -> dict | None:
    """Attributes of a person emoji from its CLDR name, or None for a non-person emoji.

    "woman firefighter: dark skin tone" -> gender woman, skin dark, hair none, role firefighter.
    """
    base, _, mods = name.partition(":")
    base = base.strip()
    words = base.split()
    gender, rest = None, base
    if words and words[0] in GENDERS:
        gender, rest = words[0], " ".join(words[1:])
    else:
        for g in OTHER_PEOPLE:
            if base == g or base.startswith(g + " "):
                gender, rest = g, base[len(g):].strip()
                break
    if gender is None:
        if not subgroup.startswith("person"):
            return None
        gender = "person"
        rest = base
    skin, hair = "none", "none"
    for m in (x.strip() for x in mods.split(",") if x.strip()):
        if m.endswith(" skin tone") and m[: -len(" skin tone")] in SKIN:
            skin = m[: -len(" skin tone")]
        elif m in HAIR:
            hair = m
        else:
            return None  # couples, families, directions...: not a single-person variant
    return {"gender": gender, "skin": skin, "hair": hair, "role": rest or "none"}


class _Renderer:
    def __init__(self, size: int):
        if not FONT.is_file():
            raise TgirError(f"{FONT} not found: install Debian's fonts-noto-color-emoji")
        self.font = ImageFont.truetype(str(FONT), 109)  # the font's only bitmap strike
        self.size = size
        self.single_width = self.font.getbbox("\U0001F600")[2]

    def render(self, text: str) -> Image.Image | None:
        """The emoji on white at size x size, or None when the font cannot draw it."""
        box = self.font.getbbox(text)
        w, h = box[2], box[3]
        if w <= 0 or h <= 0 or w > 1.3 * self.single_width:
            return None  # nothing drawn, or the sequence fell apart into several glyphs
        im = Image.new("RGBA", (w, h), (0, 0, 0, 0))
        ImageDraw.Draw(im).text((0, 0), text, font=self.font, embedded_color=True)
        alpha = np.asarray(im)[..., 3]
        if alpha.mean() < 2.0:
            return None  # an empty box
        side = max(w, h)
        bg = Image.new("RGBA", (side, side), (255, 255, 255, 255))
        bg.alpha_composite(im, ((side - w) // 2, (side - h) // 2))
        return bg.convert("RGB").resize((self.size, self.size), Image.LANCZOS)


def base_of(name: str, attrs: dict | None) -> str:
    """The unit of the train/test split. A role or activity ("firefighter") for people with
    one; the plain man / woman / person family (the only one with hair variants) is cut by
    skin tone, so hair changes occur in both splits while no test base is seen in training."""
    if attrs is None:
        return name.split(":")[0]
    if attrs["role"] == "none":
        return f"{attrs['gender'] if attrs['gender'] not in GENDERS else 'adult'}|{attrs['skin']}"
    return attrs["role"]


def _split_of(key: str, seed: int, test_fraction: float) -> str:
    h = int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "test" if h < test_fraction else "train"


def _change_text(attr: str, src: dict, tgt: dict) -> str:
    if attr == "skin":
        return "default skin tone" if tgt["skin"] == "none" else f"{tgt['skin']} skin tone"
    if attr == "hair":
        return "no hair style" if tgt["hair"] == "none" else tgt["hair"]
    return f"{tgt['gender']} instead of {src['gender']}"


def composed_pairs(items: list[dict]) -> list[dict]:
    """Ordered pairs of person emoji that differ in exactly one of skin / hair / gender."""
    pairs = []
    for attr in ("skin", "hair", "gender"):
        groups: dict[tuple, list[dict]] = defaultdict(list)
        for it in items:
            a = it["attributes"]
            if a is None or (attr == "gender" and a["gender"] not in GENDERS):
                continue
            groups[tuple(sorted((k, v) for k, v in a.items() if k != attr))].append(it)
        for members in groups.values():
            for s in members:
                for t in members:
                    if s is not t and s["attributes"][attr] != t["attributes"][attr]:
                        pairs.append({"source": s["id"], "target": t["id"], "attr": attr,
                                      "text": _change_text(attr, s["attributes"],
                                                           t["attributes"])})
    return pairs


def generate(out: Path, size: int = 128, seed: int = 0, test_fraction: float = 0.3,
             limit: int | None = None, progress: bool = True) -> Path:
    """Render the emoji dataset into ``out`` (atomically) and write ``emoji.json``."""
    from tqdm import tqdm

    entries = parse_emoji_test()
    if limit:
        entries = entries[:limit]
    keywords = cldr_keywords()
    renderer = _Renderer(size)
    out = Path(out)
    skipped: Counter = Counter()
    items: list[dict] = []
    with atomic_dir(out) as tmp:
        (tmp / "images").mkdir()
        for e in tqdm(entries, desc="emoji", disable=not progress, mininterval=1.0):
            im = renderer.render(e["emoji"])
            if im is None:
                skipped["the font draws it as an empty box or several glyphs"] += 1
                continue
            if np.asarray(im).min() >= 250:
                skipped["rendered blank"] += 1
                continue
            file = f"images/{e['id']}.png"
            im.save(tmp / file)
            attrs = parse_attributes(e["name"], e["subgroup"])
            base = base_of(e["name"], attrs)
            items.append({**e, "file": file,
                          "keywords": keywords.get(e["emoji"].replace("\ufe0f", ""), []),
                          "attributes": attrs, "base": base,
                          "split": _split_of(base, seed, test_fraction)})
        # zero-shot attribute split (AIHM): whole attribute combinations go to test
        for it in items:
            a = it["attributes"]
            it["attr_split"] = (None if a is None else _split_of(
                "|".join(a[k] for k in ("gender", "skin", "hair", "role")), seed + 1,
                test_fraction))
        by_id = {it["id"]: it for it in items}
        composed: dict[str, list[dict]] = {"train": [], "test": []}
        for p in composed_pairs(items):
            s, t = by_id[p["source"]], by_id[p["target"]]
            if s["split"] == t["split"]:
                composed[s["split"]].append(p)
        doc = {"format": FORMAT, "version": VERSION,
               "params": {"size": size, "seed": seed, "test_fraction": test_fraction,
                          "limit": limit, "font": str(FONT),
                          "font_sha256": hashlib.sha256(FONT.read_bytes()).hexdigest()},
               "counts": {"entries": len(entries), "rendered": len(items),
                          "skipped": dict(skipped),
                          "composed": {k: len(v) for k, v in composed.items()}},
               "items": items, "composed": composed}
        (tmp / "emoji.json").write_text(json.dumps(doc, ensure_ascii=False))
    return out


def read_annotations(root: Path) -> dict:
    return read_json_doc(root, "emoji.json", FORMAT, VERSION, "emoji")


def load(root: Path, split: str, image_size: int | None = None,
         strict: bool = False) -> ComposedSplit:
    """Composed queries of ``split``; the gallery is every emoji of the split's bases."""
    root = Path(root)
    doc = read_annotations(root)
    if split not in doc["composed"]:
        raise TgirError(f"emoji at {root} has no split {split!r} (train, test)")
    items = [it for it in doc["items"] if it["split"] == split]
    row = {it["id"]: i for i, it in enumerate(items)}
    q = doc["composed"][split]
    return ComposedSplit(
        name=f"emoji-{split}",
        images=load_images([root / it["file"] for it in items], image_size,
                           desc=f"emoji {split}", strict=strict),
        labels=np.arange(len(items), dtype=np.int64),
        query_source=np.array([row[x["source"]] for x in q], dtype=np.int64),
        query_text=[x["text"] for x in q],
        query_target=np.array([row[x["target"]] for x in q], dtype=np.int64),
        image_ids=[it["id"] for it in items],
        meta={"dataset": "emoji", "root": str(root), "names": [it["name"] for it in items]},
    )


ATTRIBUTES = ("gender", "skin", "hair", "role")


def attribute_schema(items: list[dict]) -> dict[str, list[str]]:
    """Every value of every person attribute in the dataset (train and test), sorted, so the
    schema is the same whichever split is loaded."""
    return {a: sorted({it["attributes"][a] for it in items if it["attributes"]})
            for a in ATTRIBUTES}


def load_attributes(root: Path, split: str, image_size: int | None = None,
                    strict: bool = False) -> AttributeSplit:
    """Person emoji of the zero-shot attribute split (Dong et al.): no attribute combination of
    ``test`` occurs in ``train``."""
    root = Path(root)
    doc = read_annotations(root)
    if split not in ("train", "test"):
        raise TgirError(f"emoji attributes at {root} have no split {split!r} (train, test)")
    people = [it for it in doc["items"] if it["attributes"]]
    schema = attribute_schema(people)
    items = [it for it in people if it["attr_split"] == split]
    index = {a: {v: i for i, v in enumerate(vals)} for a, vals in schema.items()}
    return AttributeSplit(
        name=f"emoji-attr-{split}",
        images=load_images([root / it["file"] for it in items], image_size,
                           desc=f"emoji people {split}", strict=strict),
        attributes=np.array([[index[a][it["attributes"][a]] for a in ATTRIBUTES]
                             for it in items], dtype=np.int64).reshape(len(items), 4),
        schema=schema,
        image_ids=[it["id"] for it in items],
        meta={"dataset": "emoji_attr", "root": str(root),
              "names": [it["name"] for it in items]},
    )


def item_text(it: dict) -> str:
    """An emoji's catalog text: its CLDR name, keywords and group path."""
    return ". ".join(x for x in [it["name"], ", ".join(it.get("keywords", [])),
                                 f"{it['group']}, {it['subgroup'].replace('-', ' ')}"] if x)


def load_pairs(root: Path, split: str, image_size: int | None = None,
               strict: bool = False):
    """Emoji as a second catalog for Sadeh et al.'s joint embedding: each emoji's image and the
    vocabulary words of its name, keywords and group (same split as the composed queries)."""
    from tgir.data.catalog_words import cached_vocabulary, pairs_split

    root = Path(root)
    doc = read_annotations(root)
    if split not in ("train", "test"):
        raise TgirError(f"emoji at {root} has no split {split!r} (train, test)")
    all_items = doc["items"]
    cw = cached_vocabulary(root, [it["id"] for it in all_items],
                           [item_text(it) for it in all_items],
                           [it["split"] == "train" for it in all_items], 5, "v1")
    items = [it for it in all_items if it["split"] == split]
    return pairs_split(f"emoji-{split}", root, items, [item_text(it) for it in items], cw,
                       image_size, strict,
                       {"dataset": "emoji_pairs",
                        "categories": [[f"{it['group']}/{it['subgroup']}"] for it in items]})


def load_text(root: Path, split: str, image_size: int | None = None,
              strict: bool = False):
    """Emoji for sentence -> image retrieval (Zheng et al.): each emoji is its own identity, with
    two captions, its CLDR name and its keywords (when it has any)."""
    from tgir.data.types import TextImageSplit

    root = Path(root)
    doc = read_annotations(root)
    if split not in ("train", "test"):
        raise TgirError(f"emoji at {root} has no split {split!r} (train, test)")
    items = [it for it in doc["items"] if it["split"] == split]
    captions, owner = [], []
    for i, it in enumerate(items):
        captions.append(it["name"])
        owner.append(i)
        if it.get("keywords"):
            captions.append(", ".join(it["keywords"]))
            owner.append(i)
    return TextImageSplit(
        name=f"emoji-text-{split}",
        images=load_images([root / it["file"] for it in items], image_size,
                           desc=f"emoji {split}", strict=strict),
        labels=np.arange(len(items), dtype=np.int64), captions=captions,
        caption_image=np.array(owner, dtype=np.int64), image_ids=[it["id"] for it in items],
        meta={"dataset": "emoji_text", "root": str(root)},
    )
