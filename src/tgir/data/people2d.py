"""people2d: a generated pedestrian-attribute benchmark shaped like Market-1501's attributes.

Issue 22's point: css2d_attr and emoji_attr have independent, clean attributes and (emoji) one
image per combination, the one case where a product of independent per-attribute classifiers
is the optimal ranker. The datasets of Dong et al. (Market-1501 / DukeMTMC attributes, PETA)
differ in three ways, and people2d reproduces each:

1. **the schema** of the Market-1501 attribute annotation (Lin et al., "Improving Person
   Re-identification by Attribute and Identity Learning", Pattern Recognition 2019; the
   annotation README, github.com/vana77/Market-1501_Attribute): gender, hair length, sleeve
   length, length and type of lower-body clothing, hat, backpack, bag, handbag, age (4 groups)
   and one of 8 upper-body / 9 lower-body colours ("only one color is labeled as yes for an
   identity", hence one categorical attribute each); labels per *identity*;
2. **correlated attributes**: identities are drawn from a joint distribution (``STATS``);
   every figure in it names its source, and where no published figure exists the choice
   is marked ``assumed`` and stays neutral (independent, uniform) rather than tuned;
3. **noisy labels and many images per identity**: each identity is drawn in several images
   (camera tint and brightness, position, scale, pose, occluders, like the 6 cameras of
   Market-1501), and its annotated labels differ from the drawn truth at the rate ``NOISE``.

The split is zero-shot (Dong et al.'s setting): whole *annotated* combinations go to test, so
no test query occurs in training; a query is a full annotated attribute set and its relevant
images are the identities annotated with it (``AttributeSplit``).
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from tgir import TgirError
from tgir.data.images import load_images
from tgir.data.people2d_stats import NOISE, STATS, sample_identity
from tgir.data.store import atomic_dir, read_json_doc
from tgir.data.types import AttributeSplit

FORMAT, VERSION = "tgir-people2d", 1

# Market-1501's 12 attribute groups (the 8 upper / 9 lower colour flags are one categorical
# attribute each: exactly one is "yes" per identity). Value names are what a user types.
SCHEMA: dict[str, list[str]] = {
    "gender": ["male", "female"],
    "hair": ["short hair", "long hair"],
    "sleeve": ["long sleeve", "short sleeve"],
    "lower length": ["long lower", "short lower"],
    "lower type": ["dress", "pants"],
    "hat": ["no hat", "hat"],
    "backpack": ["no backpack", "backpack"],
    "bag": ["no bag", "bag"],
    "handbag": ["no handbag", "handbag"],
    "age": ["young", "teenager", "adult", "old"],
    "upper color": ["black", "white", "red", "purple", "yellow", "gray", "blue", "green"],
    "lower color": ["black", "white", "pink", "purple", "yellow", "gray", "blue", "green",
                    "brown"],
}
ATTRIBUTES = list(SCHEMA)

RGB = {"black": (30, 30, 34), "white": (232, 232, 228), "red": (196, 36, 40),
       "purple": (120, 52, 150), "yellow": (226, 200, 40), "gray": (128, 128, 132),
       "blue": (40, 70, 180), "green": (44, 140, 64), "pink": (232, 140, 180),
       "brown": (120, 80, 44)}
SKIN = [(246, 214, 190), (230, 190, 160), (200, 150, 110), (150, 105, 75), (100, 70, 50)]
HAIR_RGB = [(24, 20, 18), (70, 44, 26), (120, 84, 50), (200, 170, 100)]
GREY_HAIR = [(190, 190, 190), (225, 225, 225)]
BAG_RGB = [(40, 40, 44), (60, 50, 40), (30, 40, 80), (110, 30, 30), (90, 90, 90)]

# Six cameras (Market-1501 has six): a tint and brightness each, applied to the whole image.
CAMERAS = [((1.00, 1.00, 1.00), 1.00), ((1.05, 1.00, 0.92), 0.85), ((0.92, 0.98, 1.08), 1.10),
           ((1.00, 1.04, 0.95), 0.70), ((1.08, 0.95, 0.95), 0.95), ((0.95, 0.95, 1.00), 0.60)]


@dataclass
class Params:
    """Size of a generated people2d. ``images_per_id``: each identity is drawn this many
    times (Market-1501: 12,936 training boxes of 751 identities, 17.2 each)."""

    identities: int = 800
    images_per_id: int = 8
    size: int = 128
    test_fraction: float = 0.3
    seed: int = 0
    noise: bool = True


SCALES = {"demo": Params(), "tiny": Params(identities=60, images_per_id=3),
          "paper": Params(identities=1501, images_per_id=17)}


# ---------------------------------------------------------------- the labels
def annotate(truth: dict[str, str], rng: random.Random, noise: dict[str, float]
             ) -> dict[str, str]:
    """The annotator's labels of an identity: each attribute replaced, with probability
    ``noise[attr]``, by another value of the attribute (uniformly)."""
    out = {}
    for a, v in truth.items():
        if rng.random() < noise.get(a, 0.0):
            out[a] = rng.choice([x for x in SCHEMA[a] if x != v])
        else:
            out[a] = v
    return out


# ---------------------------------------------------------------- rendering
def _shade(rgb: tuple[int, int, int], rng: random.Random, amount: float = 0.12
           ) -> tuple[int, int, int]:
    f = 1.0 + rng.uniform(-amount, amount)
    return tuple(int(np.clip(c * f + rng.uniform(-10, 10), 0, 255)) for c in rgb)


@dataclass
class Look:
    """What stays fixed across an identity's images besides its attributes: skin, hair and
    bag colours, exact clothing shades."""

    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    hat: tuple[int, int, int]
    bag: tuple[int, int, int]
    upper: tuple[int, int, int]
    lower: tuple[int, int, int]

    @staticmethod
    def draw(truth: dict[str, str], rng: random.Random) -> Look:
        hair = rng.choice(GREY_HAIR) if truth["age"] == "old" else rng.choice(HAIR_RGB)
        return Look(skin=rng.choice(SKIN), hair=hair,
                    hat=_shade(RGB[rng.choice(list(RGB))], rng), bag=rng.choice(BAG_RGB),
                    upper=_shade(RGB[truth["upper color"]], rng),
                    lower=_shade(RGB[truth["lower color"]], rng))


@dataclass
class _Pen:
    """Where one figure is drawn: the canvas, the drawing unit (the figure is 128 units tall)
    and the body's landmarks."""

    d: ImageDraw.ImageDraw
    u: float
    cx: float
    top: float
    sh: float  # shoulder half-width
    hips: float
    waist: float
    neck_y: float
    waist_y: float
    foot_y: float
    side: int  # the side a backpack peeks out / a bag hangs

    def box(self, x0: float, y0: float, x1: float, y1: float, fill) -> None:
        self.d.rectangle([min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)], fill=fill)

    def line(self, points: list, fill, width: float) -> None:
        self.d.line(points, fill=fill, width=max(1, int(width * self.u)))


def _background(rng: random.Random, w: int, h: int) -> Image.Image:
    """A street-like backdrop: a wall colour, a darker ground below a random horizon and up
    to three blocks of clutter (windows, poles)."""
    bg_top = tuple(rng.randint(60, 200) for _ in range(3))
    bg_low = tuple(int(c * rng.uniform(0.5, 0.9)) for c in bg_top)
    im = Image.new("RGB", (w, h), bg_top)
    d = ImageDraw.Draw(im)
    horizon = int(h * rng.uniform(0.55, 0.75))
    d.rectangle([0, horizon, w, h], fill=bg_low)
    for _ in range(rng.randint(0, 3)):
        x0, y0 = rng.randint(0, w), rng.randint(0, horizon)
        d.rectangle([x0, y0, x0 + rng.randint(8, 40), y0 + rng.randint(8, 60)],
                    fill=tuple(rng.randint(40, 220) for _ in range(3)))
    return im


def _pen(im: Image.Image, truth: dict[str, str], rng: random.Random) -> _Pen:
    """The figure's scale (age), position and build (gender) in a 1:2 box like a Market-1501
    crop."""
    w, h = im.size
    age_scale = {"young": 0.70, "teenager": 0.86, "adult": 1.0, "old": 0.96}[truth["age"]]
    height = h * 0.86 * age_scale * rng.uniform(0.92, 1.04)
    cx = w / 2 + rng.uniform(-0.12, 0.12) * w
    top = h * 0.97 - height + rng.uniform(-0.03, 0.01) * h
    u = height / 128.0
    female = truth["gender"] == "female"
    return _Pen(ImageDraw.Draw(im), u, cx, top, sh=(11.0 if female else 14.0) * u,
                hips=(13.0 if female else 11.5) * u, waist=(10.0 if female else 11.5) * u,
                neck_y=top + 19 * u, waist_y=top + 62 * u, foot_y=top + 126 * u,
                side=rng.choice((-1, 1)))


def _head_geometry(truth: dict[str, str], p: _Pen) -> tuple[float, float, float]:
    r = (9.5 if truth["age"] == "young" else 8.0) * p.u
    return p.cx + (2 * p.u if truth["age"] == "old" else 0), p.top + 10 * p.u, r


def _behind(truth: dict[str, str], look: Look, p: _Pen) -> None:
    """What the body hides partly: a backpack peeking out on one side, long hair."""
    u = p.u
    if truth["backpack"] == "backpack":
        bx = p.cx + p.side * (p.sh - 2 * u)
        p.box(bx, p.neck_y + 6 * u, bx + p.side * 9 * u, p.neck_y + 34 * u, look.bag)
    if truth["hair"] == "long hair":
        hx, hy, r = _head_geometry(truth, p)
        p.box(hx - r - 1 * u, hy, hx + r + 1 * u, p.neck_y + 16 * u, look.hair)


def _lower_body(truth: dict[str, str], look: Look, p: _Pen, rng: random.Random) -> None:
    """Skin legs and shoes, then pants or a dress down to the drawn length."""
    u, leg_w = p.u, 4.5 * p.u
    stance = rng.uniform(0.0, 4.0) * u
    lower_end = {"long lower": 118 * u, "short lower": 86 * u}[truth["lower length"]]
    legs = [p.cx + sgn * (4.5 * u + stance / 2) for sgn in (-1, 1)]
    for lx in legs:
        p.box(lx - leg_w, p.waist_y, lx + leg_w, p.foot_y - 3 * u, look.skin)
        p.box(lx - leg_w - 1 * u, p.foot_y - 4 * u, lx + leg_w + 1 * u, p.foot_y, (25, 25, 25))
    if truth["lower type"] == "pants":
        for lx in legs:
            p.box(lx - leg_w - 0.5 * u, p.waist_y, lx + leg_w + 0.5 * u, p.top + lower_end,
                  look.lower)
        p.box(p.cx - p.hips, p.waist_y, p.cx + p.hips, p.waist_y + 10 * u, look.lower)
    else:  # a dress / skirt: a trapezoid from the hips to the hem
        hem = p.top + lower_end
        flare = p.hips + (hem - p.waist_y) * 0.22
        p.d.polygon([(p.cx - p.hips, p.waist_y), (p.cx + p.hips, p.waist_y),
                     (p.cx + flare, hem), (p.cx - flare, hem)], fill=look.lower)


def _upper_body(truth: dict[str, str], look: Look, p: _Pen, rng: random.Random
                ) -> list[tuple[float, float]]:
    """Torso, and arms with the sleeve in the upper colour; returns the two hands."""
    u = p.u
    p.d.polygon([(p.cx - p.sh, p.neck_y + 3 * u), (p.cx + p.sh, p.neck_y + 3 * u),
                 (p.cx + p.waist, p.waist_y), (p.cx - p.waist, p.waist_y)], fill=look.upper)
    sleeve_end = {"long sleeve": 60 * u, "short sleeve": 34 * u}[truth["sleeve"]]
    hands = []
    for sgn in (-1, 1):
        swing = rng.uniform(-3, 3) * u
        ax = p.cx + sgn * (p.sh + 2.5 * u)
        p.box(ax - 2.5 * u, p.neck_y + 4 * u, ax + 2.5 * u + swing, p.top + 62 * u, look.skin)
        p.box(ax - 2.8 * u, p.neck_y + 3 * u, ax + 2.8 * u + swing, p.top + sleeve_end,
              look.upper)
        hands.append((ax + swing / 2, p.top + 63 * u))
    return hands


def _carried(truth: dict[str, str], look: Look, p: _Pen, hands: list) -> None:
    """A shoulder bag (strap across the chest, a box at the hip), backpack straps, a
    handbag hanging from one hand."""
    u = p.u
    if truth["bag"] == "bag":
        s0 = (p.cx - p.side * p.sh, p.neck_y + 4 * u)
        s1 = (p.cx + p.side * (p.hips + 2 * u), p.waist_y + 4 * u)
        p.line([s0, s1], look.bag, 2.2)
        p.box(s1[0] - 6 * u, s1[1] - 4 * u, s1[0] + 6 * u, s1[1] + 9 * u, look.bag)
    if truth["backpack"] == "backpack":
        for sgn in (-1, 1):
            x = p.cx + sgn * (p.sh - 4 * u)
            p.line([(x, p.neck_y + 3 * u), (x, p.neck_y + 24 * u)], look.bag, 1.6)
    if truth["handbag"] == "handbag":
        hx, hy = hands[0 if p.side > 0 else 1]
        p.box(hx - 5 * u, hy + 2 * u, hx + 5 * u, hy + 11 * u, look.bag)
        p.line([(hx - 3 * u, hy + 2 * u), (hx, hy - 1 * u), (hx + 3 * u, hy + 2 * u)],
               look.bag, 1.2)


def _head(truth: dict[str, str], look: Look, p: _Pen) -> None:
    """Neck, head, the hair on top and a hat (brim and crown)."""
    u = p.u
    p.box(p.cx - 2.5 * u, p.neck_y - 2 * u, p.cx + 2.5 * u, p.neck_y + 4 * u, look.skin)
    hx, hy, r = _head_geometry(truth, p)
    p.d.ellipse([hx - r, hy - r, hx + r, hy + r], fill=look.skin)
    p.d.pieslice([hx - r - 0.5 * u, hy - r - 1 * u, hx + r + 0.5 * u, hy + r * 0.7], 180, 360,
                 fill=look.hair)
    if truth["hat"] == "hat":
        p.box(hx - r - 3 * u, hy - r * 0.35, hx + r + 3 * u, hy - r * 0.35 + 2.5 * u, look.hat)
        p.box(hx - r * 0.85, hy - r - 3.5 * u, hx + r * 0.85, hy - r * 0.35, look.hat)


def _camera(im: Image.Image, rng: random.Random, size: int, camera: int) -> Image.Image:
    """An occluder in 15% of the images, a mirror half the time, the downsample (2x drawn),
    blur in 30%, the camera's tint and brightness, sensor noise."""
    w, h = im.size
    if rng.random() < 0.15:  # a passer-by's arm, a pole, a bin in front
        ox, oy = rng.uniform(0.1, 0.9) * w, rng.uniform(0.4, 0.9) * h
        ImageDraw.Draw(im).rectangle(
            [ox, oy, ox + rng.uniform(0.05, 0.25) * w, h],
            fill=tuple(rng.randint(30, 200) for _ in range(3)))
    if rng.random() < 0.5:
        im = im.transpose(Image.FLIP_LEFT_RIGHT)
    im = im.resize((size, size), Image.LANCZOS)
    if rng.random() < 0.3:
        im = im.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0)))
    tint, bright = CAMERAS[camera % len(CAMERAS)]
    a = np.asarray(im, dtype=np.float32) * np.array(tint, dtype=np.float32) * bright
    a += np.random.default_rng(rng.getrandbits(32)).normal(0, 4.0, a.shape)
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


def render(truth: dict[str, str], look: Look, rng: random.Random, size: int = 128,
           camera: int = 0) -> Image.Image:
    """One image of a person: a figure of the drawn attributes on a street-like background,
    at a random position, scale and stance, seen by ``camera`` (tint, brightness), with an
    occluder sometimes. Drawn at 2x and downsampled (antialiased)."""
    im = _background(rng, 2 * size, 2 * size)
    p = _pen(im, truth, rng)
    _behind(truth, look, p)
    _lower_body(truth, look, p, rng)
    hands = _upper_body(truth, look, p, rng)
    _carried(truth, look, p, hands)
    _head(truth, look, p)
    return _camera(im, rng, size, camera)


# ---------------------------------------------------------------- the dataset on disk
def _split_of(key: str, seed: int, test_fraction: float) -> str:
    h = int.from_bytes(hashlib.sha256(f"{key}|{seed}".encode()).digest()[:8], "little")
    return "test" if h / 2 ** 64 < test_fraction else "train"


def combination_key(labels: dict[str, str]) -> str:
    return "|".join(labels[a] for a in ATTRIBUTES)


def generate(out: Path, scale: str = "demo", seed: int = 0, progress: bool = True,
             size: int | None = None, params: Params | None = None) -> Path:
    """Draw the identities (``STATS``), annotate them (``NOISE``), render
    ``images_per_id`` images of each and write ``people2d.json`` (atomically)."""
    from tqdm import tqdm

    if params is None:
        if scale not in SCALES:
            raise TgirError(f"unknown people2d scale {scale!r} (have: {', '.join(SCALES)})")
        params = Params(**{**asdict(SCALES[scale]), "seed": seed,
                           **({"size": size} if size else {})})
    rng = random.Random(params.seed)
    out = Path(out)
    ids = []
    with atomic_dir(out) as tmp:
        (tmp / "images").mkdir()
        bar = tqdm(total=params.identities * params.images_per_id, desc="people2d",
                   disable=not progress, mininterval=1.0)
        for pid in range(params.identities):
            truth = sample_identity(rng)
            labels = annotate(truth, rng, NOISE if params.noise else {})
            look = Look.draw(truth, rng)
            files = []
            for k in range(params.images_per_id):
                cam = rng.randrange(len(CAMERAS))
                f = f"images/{pid:04d}_c{cam + 1}_{k:02d}.png"
                render(truth, look, rng, params.size, cam).save(tmp / f)
                files.append(f)
                bar.update(1)
            ids.append({"id": pid, "truth": truth, "labels": labels, "files": files,
                        "split": _split_of(combination_key(labels), params.seed,
                                           params.test_fraction)})
        bar.close()
        doc = {"format": FORMAT, "version": VERSION, "scale": scale, "params": asdict(params),
               "schema": SCHEMA, "noise": NOISE if params.noise else {},
               "stats_sources": STATS["sources"], "identities": ids}
        (tmp / "people2d.json").write_text(json.dumps(doc, indent=0))
    return out


def read_annotations(root: str | Path) -> dict:
    return read_json_doc(root, "people2d.json", FORMAT, VERSION, "people2d")


def load_attributes(root: Path, split: str, image_size: int | None = None,
                    strict: bool = False, labels: str = "annotated") -> AttributeSplit:
    """The ``split`` ("train" / "test") of a generated people2d: every image with its
    identity's *annotated* labels (``labels="truth"``: the drawn ones, for analysis)."""
    root = Path(root)
    if split not in ("train", "test"):
        raise TgirError(f"people2d at {root} has no split {split!r} (train, test)")
    if labels not in ("annotated", "truth"):
        raise TgirError(f"people2d labels are 'annotated' or 'truth', not {labels!r}")
    doc = read_annotations(root)
    key = "labels" if labels == "annotated" else "truth"
    rows, files, pids = [], [], []
    index = {a: {v: i for i, v in enumerate(vals)} for a, vals in SCHEMA.items()}
    for ident in doc["identities"]:
        if ident["split"] != split:
            continue
        for f in ident["files"]:
            rows.append([index[a][ident[key][a]] for a in ATTRIBUTES])
            files.append(f)
            pids.append(ident["id"])
    return AttributeSplit(
        name=f"people2d-attr-{split}",
        images=load_images([root / f for f in files], image_size,
                           desc=f"people2d {split}", strict=strict),
        attributes=np.array(rows, dtype=np.int64).reshape(len(rows), len(ATTRIBUTES)),
        schema={a: list(v) for a, v in SCHEMA.items()},
        image_ids=[Path(f).stem for f in files],
        meta={"dataset": "people2d_attr", "root": str(root), "person_ids": pids},
    )
