"""css2d: the CSS benchmark of TIRG (Vo et al., CVPR 2019), generated.

CSS scenes are objects on a 3x3 grid; each object has one of 8 colours, one of 3 shapes
(rectangle, circle, triangle) and one of 2 sizes. Modification texts are templates that add,
remove or change ("make") one object, naming it by position and attributes. Identical scenes
share a label and retrieval counts a hit when the target's label is in the top-k (TIRG
protocol, used in MAAF Table 1). We render in 2D with Pillow like TIRG's 64x64 renderer.

On-disk format (read back by :func:`load`)::

    DIR/css2d.json      {"format": "tgir-css2d", "version": 1, "params": {...},
                         "splits": {"train": {"images": [{"file", "label", "objects"}],
                                              "queries": [{"source", "text", "target"}]},
                                    "test": {...}}}
    DIR/images/{split}_{idx:06d}.png

Difficulty knobs (all in ``params``): objects per source scene, positional jitter, the number of
modifications per source (more keeps the "copy the source" baseline low, as on the real CSS),
and held-out (colour, shape) compositions that never appear in train ("novel" split).
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from tgir import TgirError
from tgir.data.images import load_images
from tgir.data.store import atomic_dir, read_json_doc
from tgir.data.types import AttributeSplit, ComposedSplit

COLORS: dict[str, tuple[int, int, int]] = {
    "gray": (87, 87, 87),
    "red": (244, 35, 35),
    "blue": (42, 75, 215),
    "green": (29, 205, 20),
    "brown": (129, 74, 25),
    "purple": (129, 38, 192),
    "cyan": (41, 208, 208),
    "yellow": (255, 238, 51),
}
SHAPES = ("rectangle", "circle", "triangle")
SIZES = ("small", "large")
ROWS = ("top", "middle", "bottom")
COLS = ("left", "center", "right")
FORMAT = "tgir-css2d"
VERSION = 1


def position_word(cell: tuple[int, int]) -> str:
    return f"{ROWS[cell[0]]}-{COLS[cell[1]]}"


@dataclass(frozen=True)
class Obj:
    """One object of a scene: grid cell (row, col), attributes and jittered centre (y, x)."""

    cell: tuple[int, int]
    color: str
    shape: str
    size: str

    def describe(self) -> str:
        return f"{self.size} {self.color} {self.shape}"


Scene = tuple[Obj, ...]  # sorted by cell; the label key of an image


def scene_key(objs: list[Obj] | Scene) -> Scene:
    return tuple(sorted(objs, key=lambda o: o.cell))


@dataclass
class Css2dParams:
    """Generator settings; ``scale`` presets fill them (see :data:`SCALES`)."""

    train_sources: int = 1000
    test_sources: int = 460
    mods_per_source: int = 12
    min_objects: int = 2
    max_objects: int = 5
    jitter: float = 0.1  # fraction of a grid cell the centre may move each way
    holdout_compositions: int = 4  # (colour, shape) pairs never seen in train
    image_size: int = 64
    seed: int = 0
    holdout: list[tuple[str, str]] = field(default_factory=list)  # filled by the generator


SCALES: dict[str, dict] = {
    # ~6k-image test gallery, ~5.5k test queries: the demo trains on it in minutes.
    "demo": dict(train_sources=1000, test_sources=460, mods_per_source=12, min_objects=2,
                 max_objects=5, jitter=0.1),
    # CSS size (~19k images and ~17k queries per split), harder: more objects, more jitter.
    "paper": dict(train_sources=1450, test_sources=1450, mods_per_source=12, min_objects=2,
                  max_objects=6, jitter=0.2),
    # a few hundred images, for tests.
    "tiny": dict(train_sources=40, test_sources=20, mods_per_source=6, min_objects=2,
                 max_objects=4, jitter=0.1),
}


# ---------------------------------------------------------------- modifications (templates)
def apply_mod(scene: Scene, mod: dict) -> Scene:
    """Apply a structured modification to a scene; the template text is derived from ``mod``."""
    objs = list(scene)
    cell = tuple(mod["cell"])
    at = [o for o in objs if o.cell == cell]
    if mod["kind"] == "add":
        if at:
            raise ValueError(f"cell {cell} is occupied")
        objs.append(Obj(cell, mod["color"], mod["shape"], mod["size"]))
    elif mod["kind"] == "remove":
        if not at:
            raise ValueError(f"no object at {cell}")
        objs.remove(at[0])
    elif mod["kind"] == "make":
        if not at:
            raise ValueError(f"no object at {cell}")
        o = at[0]
        attr, value = mod["attr"], mod["value"]
        objs[objs.index(o)] = Obj(o.cell, **{**dict(color=o.color, shape=o.shape, size=o.size),
                                             attr: value})
    else:
        raise ValueError(f"unknown modification kind {mod['kind']!r}")
    return scene_key(objs)


def mod_text(scene: Scene, mod: dict) -> str:
    """The CSS-style template sentence for ``mod`` applied to ``scene``."""
    pos = position_word(tuple(mod["cell"]))
    if mod["kind"] == "add":
        return f"add {mod['size']} {mod['color']} {mod['shape']} to {pos}"
    o = next(o for o in scene if o.cell == tuple(mod["cell"]))
    if mod["kind"] == "remove":
        return f"remove {pos} {o.describe()}"
    return f"make {pos} {o.describe()} {mod['value']}"


def parse_mod_text(text: str) -> dict:
    """Inverse of :func:`mod_text` (used by tests to check that every template is applied right)."""
    w = text.split()
    cell_of = {position_word((r, c)): [r, c] for r in range(3) for c in range(3)}
    if w[0] == "add":
        return dict(kind="add", size=w[1], color=w[2], shape=w[3], cell=cell_of[w[5]])
    if w[0] == "remove":
        return dict(kind="remove", cell=cell_of[w[1]], obj=tuple(w[2:5]))
    value = w[5]
    attr = "color" if value in COLORS else "shape" if value in SHAPES else "size"
    return dict(kind="make", cell=cell_of[w[1]], obj=tuple(w[2:5]), attr=attr, value=value)


class _Sampler:
    def __init__(self, rng: random.Random, allowed: list[tuple[str, str]]):
        self.rng = rng
        self.allowed = allowed  # allowed (colour, shape) compositions

    def obj_attrs(self) -> tuple[str, str, str]:
        color, shape = self.rng.choice(self.allowed)
        return color, shape, self.rng.choice(SIZES)

    def scene(self, n: int) -> Scene:
        cells = self.rng.sample([(r, c) for r in range(3) for c in range(3)], n)
        objs = []
        for cell in cells:
            color, shape, size = self.obj_attrs()
            objs.append(Obj(cell, color, shape, size))
        return scene_key(objs)

    def mod(self, scene: Scene, min_objects: int) -> dict:
        occupied = [o.cell for o in scene]
        empty = [(r, c) for r in range(3) for c in range(3) if (r, c) not in occupied]
        kinds = ["make"]
        if empty:
            kinds.append("add")
        if len(scene) > max(1, min_objects - 1):
            kinds.append("remove")
        kind = self.rng.choice(kinds)
        if kind == "add":
            color, shape, size = self.obj_attrs()
            return dict(kind="add", cell=list(self.rng.choice(empty)), color=color, shape=shape,
                        size=size)
        o = self.rng.choice(scene)
        if kind == "remove":
            return dict(kind="remove", cell=list(o.cell))
        attr = self.rng.choice(["color", "shape", "size"])
        if attr == "size":
            value = "small" if o.size == "large" else "large"
        else:
            options = [(c, s) for c, s in self.allowed
                       if (attr == "color" and s == o.shape and c != o.color)
                       or (attr == "shape" and c == o.color and s != o.shape)]
            if not options:
                attr, value = "size", ("small" if o.size == "large" else "large")
            else:
                c, s = self.rng.choice(options)
                value = c if attr == "color" else s
        return dict(kind="make", cell=list(o.cell), attr=attr, value=value)


def render(scene: Scene, rng: random.Random, size: int = 64, jitter: float = 0.1
           ) -> tuple[Image.Image, list[tuple[float, float]]]:
    """Draw a scene on white, TIRG 2D geometry (half-size 4 px small / 8 px large at 64 px)."""
    im = Image.new("RGB", (size, size), (255, 255, 255))
    d = ImageDraw.Draw(im)
    centres = []
    for o in scene:
        y = (o.cell[0] + 0.5 + rng.uniform(-jitter, jitter)) / 3.0 * size
        x = (o.cell[1] + 0.5 + rng.uniform(-jitter, jitter)) / 3.0 * size
        s = (4.0 if o.size == "small" else 8.0) * size / 64.0
        c = COLORS[o.color]
        if o.shape == "rectangle":
            d.rectangle([x - s, y - s, x + s - 1, y + s - 1], fill=c)
        elif o.shape == "circle":
            d.ellipse([x - s, y - s, x + s - 1, y + s - 1], fill=c)
        else:
            d.polygon([(x, y - s), (x + s, y + s - 1), (x - s, y + s - 1)], fill=c)
        centres.append((y / size, x / size))
    return im, centres


def _gen_split(split: str, n_sources: int, p: Css2dParams, sampler: _Sampler,
               img_dir: Path, progress: bool) -> dict:
    from tqdm import tqdm

    rng = sampler.rng
    images: list[dict] = []
    queries: list[dict] = []
    label_of: dict[Scene, int] = {}

    def add_image(scene: Scene) -> int:
        idx = len(images)
        im, centres = render(scene, rng, p.image_size, p.jitter)
        fname = f"images/{split}_{idx:06d}.png"
        im.save(img_dir.parent / fname, compress_level=1)
        label = label_of.setdefault(scene, len(label_of))
        images.append({
            "file": fname,
            "label": label,
            "objects": [dict(cell=list(o.cell), color=o.color, shape=o.shape, size=o.size,
                             pos=[round(c[0], 4), round(c[1], 4)])
                        for o, c in zip(scene, centres, strict=True)],
        })
        return idx

    for _ in tqdm(range(n_sources), desc=f"css2d {split}", disable=not progress,
                  mininterval=1.0):
        scene = sampler.scene(rng.randint(p.min_objects, p.max_objects))
        src = add_image(scene)
        texts: set[str] = set()
        for _attempt in range(50 * p.mods_per_source):
            if len(texts) >= p.mods_per_source:
                break
            mod = sampler.mod(scene, p.min_objects)
            text = mod_text(scene, mod)
            if text in texts:
                continue
            texts.add(text)
            tgt = add_image(apply_mod(scene, mod))
            queries.append({"source": src, "text": text, "target": tgt})
    return {"images": images, "queries": queries}


def generate(out: Path, scale: str = "demo", seed: int = 0, progress: bool = True,
             **overrides) -> Path:
    """Generate css2d into ``out`` atomically (a temp dir renamed into place at the end).

    An existing, complete ``out`` is replaced only when the new one is complete, so an
    interrupted run never leaves a half-written dataset where a good one was.
    """
    if scale not in SCALES:
        raise TgirError(f"unknown css2d scale {scale!r}; choose one of {sorted(SCALES)}")
    params = Css2dParams(**{**SCALES[scale], **overrides, "seed": seed})
    if params.min_objects < 1 or params.max_objects > 9 or params.min_objects > params.max_objects:
        raise TgirError("css2d needs 1 <= min_objects <= max_objects <= 9")
    rng = random.Random(seed)
    comps = [(c, s) for c in COLORS for s in SHAPES]
    params.holdout = sorted(rng.sample(comps, params.holdout_compositions))
    allowed_train = [c for c in comps if c not in params.holdout]

    out = Path(out)
    with atomic_dir(out) as tmp:
        (tmp / "images").mkdir()
        splits = {
            "train": _gen_split("train", params.train_sources, params,
                                _Sampler(random.Random(rng.random()), allowed_train),
                                tmp / "images", progress),
            "test": _gen_split("test", params.test_sources, params,
                               _Sampler(random.Random(rng.random()), comps),
                               tmp / "images", progress),
        }
        doc = {"format": FORMAT, "version": VERSION, "scale": scale, "params": asdict(params),
               "splits": splits}
        (tmp / "css2d.json").write_text(json.dumps(doc, separators=(",", ":")))
    return out


def read_annotations(root: Path) -> dict:
    return read_json_doc(root, "css2d.json", FORMAT, VERSION, "css2d")


def load(root: Path, split: str, image_size: int | None = None,
         strict: bool = False) -> ComposedSplit:
    """Read one split of a generated css2d directory."""
    root = Path(root)
    doc = read_annotations(root)
    if split not in doc["splits"]:
        raise TgirError(f"css2d at {root} has no split {split!r} (has {sorted(doc['splits'])})")
    s = doc["splits"][split]
    images = load_images([root / im["file"] for im in s["images"]], image_size,
                         desc=f"css2d {split}", strict=strict)
    q = s["queries"]
    return ComposedSplit(
        name=f"css2d-{split}",
        images=images,
        labels=np.array([im["label"] for im in s["images"]], dtype=np.int64),
        query_source=np.array([x["source"] for x in q], dtype=np.int64),
        query_text=[x["text"] for x in q],
        query_target=np.array([x["target"] for x in q], dtype=np.int64),
        image_ids=[Path(im["file"]).stem for im in s["images"]],
        meta={"dataset": "css2d", "root": str(root), "params": doc["params"],
              "objects": [im["objects"] for im in s["images"]]},
    )


# ---------------------------------------------------------------- attribute queries (Dong et al.)
COUNT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ATTRIBUTES = {"count": list(COUNT_WORDS[1:]), "color": sorted(COLORS), "shape": list(SHAPES),
              "size": list(SIZES)}


def scene_attributes(objects: list[dict]) -> dict[str, str]:
    """The attribute set of a scene for attribute queries: how many objects it has, and the
    colour, shape and size of its first object in reading order (top-left first)."""
    first = min(objects, key=lambda o: tuple(o["cell"]))
    return {"count": COUNT_WORDS[len(objects)], "color": first["color"],
            "shape": first["shape"], "size": first["size"]}


def attribute_split(attrs: dict[str, str], seed: int = 0, test_fraction: float = 0.3) -> str:
    """Zero-shot split of attribute combinations: a whole combination is train or test."""
    import hashlib

    key = "|".join(attrs[a] for a in ATTRIBUTES) + f"|{seed}"
    h = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little") / 2 ** 64
    return "test" if h < test_fraction else "train"


def attribute_items(doc: dict) -> list[tuple[dict, dict, str]]:
    """(image record, its attributes, its zero-shot split) over every image of both splits."""
    out = []
    for split in sorted(doc["splits"]):
        for im in doc["splits"][split]["images"]:
            a = scene_attributes(im["objects"])
            out.append((im, a, attribute_split(a, doc["params"].get("seed", 0))))
    return out


def load_attributes(root: Path, split: str, image_size: int | None = None,
                    strict: bool = False) -> AttributeSplit:
    """css2d scenes as an attribute-query benchmark (Dong et al. protocol): the images of both
    css2d splits, re-split so that no test attribute combination occurs in training."""
    root = Path(root)
    if split not in ("train", "test"):
        raise TgirError(f"css2d attributes at {root} have no split {split!r} (train, test)")
    doc = read_annotations(root)
    chosen = [(im, a) for im, a, s in attribute_items(doc) if s == split]
    index = {k: {v: i for i, v in enumerate(vals)} for k, vals in ATTRIBUTES.items()}
    return AttributeSplit(
        name=f"css2d-attr-{split}",
        images=load_images([root / im["file"] for im, _ in chosen], image_size,
                           desc=f"css2d attributes {split}", strict=strict),
        attributes=np.array([[index[k][a[k]] for k in ATTRIBUTES] for _, a in chosen],
                            dtype=np.int64).reshape(len(chosen), len(ATTRIBUTES)),
        schema={k: list(v) for k, v in ATTRIBUTES.items()},
        image_ids=[Path(im["file"]).stem for im, _ in chosen],
        meta={"dataset": "css2d_attr", "root": str(root)},
    )


# ---------------------------------------------------------------- scene descriptions (Zheng et al.)
def describe_scene(objects: list[dict], rng: random.Random | None = None) -> str:
    """A sentence naming every object: "a large red circle at top-left and a small blue
    triangle at bottom-right" (objects in reading order, or shuffled with ``rng``)."""
    objs = sorted(objects, key=lambda o: tuple(o["cell"]))
    if rng is not None:
        rng.shuffle(objs)
    parts = [f"a {o['size']} {o['color']} {o['shape']} at {position_word(tuple(o['cell']))}"
             for o in objs]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def load_text(root: Path, split: str, image_size: int | None = None,
              strict: bool = False):
    """css2d scenes for sentence -> image retrieval (Zheng et al.): two descriptions per image
    (reading order and a shuffled order); identical scenes share an identity."""
    from tgir.data.types import TextImageSplit

    root = Path(root)
    doc = read_annotations(root)
    if split not in doc["splits"]:
        raise TgirError(f"css2d at {root} has no split {split!r} (has {sorted(doc['splits'])})")
    ims = doc["splits"][split]["images"]
    rng = random.Random(f"css2d-text-{split}")
    captions, owner = [], []
    for i, im in enumerate(ims):
        for r in (None, rng):
            captions.append(describe_scene(im["objects"], r))
            owner.append(i)
    return TextImageSplit(
        name=f"css2d-text-{split}",
        images=load_images([root / im["file"] for im in ims], image_size,
                           desc=f"css2d {split}", strict=strict),
        labels=np.array([im["label"] for im in ims], dtype=np.int64),
        captions=captions, caption_image=np.array(owner, dtype=np.int64),
        image_ids=[Path(im["file"]).stem for im in ims],
        meta={"dataset": "css2d_text", "root": str(root)},
    )
