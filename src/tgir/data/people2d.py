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


def render(truth: dict[str, str], look: Look, rng: random.Random, size: int = 128,
           camera: int = 0) -> Image.Image:
    """One image of a person: a figure of the drawn attributes on a street-like background,
    at a random position, scale and stance, seen by ``camera`` (tint, brightness), with an
    occluder sometimes. Drawn at 2x and downsampled (antialiased)."""
    ss = 2
    w = h = size * ss
    bg_top = tuple(rng.randint(60, 200) for _ in range(3))
    bg_low = tuple(int(c * rng.uniform(0.5, 0.9)) for c in bg_top)
    im = Image.new("RGB", (w, h), bg_top)
    d = ImageDraw.Draw(im)
    horizon = int(h * rng.uniform(0.55, 0.75))
    d.rectangle([0, horizon, w, h], fill=bg_low)
    for _ in range(rng.randint(0, 3)):  # background clutter (windows, poles)
        x0, y0 = rng.randint(0, w), rng.randint(0, horizon)
        d.rectangle([x0, y0, x0 + rng.randint(8, 40), y0 + rng.randint(8, 60)],
                    fill=tuple(rng.randint(40, 220) for _ in range(3)))
    # figure geometry in units of the figure height H (a 1:2 box, like a Market-1501 crop)
    age_scale = {"young": 0.70, "teenager": 0.86, "adult": 1.0, "old": 0.96}[truth["age"]]
    H = h * 0.86 * age_scale * rng.uniform(0.92, 1.04)
    cx = w / 2 + rng.uniform(-0.12, 0.12) * w
    top = h * 0.97 - H + rng.uniform(-0.03, 0.01) * h
    u = H / 128.0  # drawing unit: the figure is 128 units tall
    female = truth["gender"] == "female"
    head_r = (9.5 if truth["age"] == "young" else 8.0) * u
    head_c = (cx + (2 * u if truth["age"] == "old" else 0), top + 10 * u)
    neck_y = top + 19 * u
    sh = (11.0 if female else 14.0) * u  # shoulder half-width
    waist_y, waist = top + 62 * u, (10.0 if female else 11.5) * u
    hips = (13.0 if female else 11.5) * u
    foot_y = top + 126 * u

    def box(x0, y0, x1, y1, fill):
        d.rectangle([min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)], fill=fill)

    # backpack behind the torso: a block peeking out on one side
    side = rng.choice((-1, 1))
    if truth["backpack"] == "backpack":
        bx = cx + side * (sh - 2 * u)
        box(bx, neck_y + 6 * u, bx + side * 9 * u, neck_y + 34 * u, look.bag)
    # long hair behind the head and shoulders
    if truth["hair"] == "long hair":
        box(head_c[0] - head_r - 1 * u, head_c[1], head_c[0] + head_r + 1 * u,
            neck_y + 16 * u, look.hair)
    # legs / lower-body clothing
    leg_w = 4.5 * u
    stance = rng.uniform(0.0, 4.0) * u
    lower_end = {"long lower": 118 * u, "short lower": 86 * u}[truth["lower length"]]
    for sgn in (-1, 1):  # skin legs first, clothing drawn over them
        lx = cx + sgn * (4.5 * u + stance / 2)
        box(lx - leg_w, waist_y, lx + leg_w, foot_y - 3 * u, look.skin)
        box(lx - leg_w - 1 * u, foot_y - 4 * u, lx + leg_w + 1 * u, foot_y, (25, 25, 25))
    if truth["lower type"] == "pants":
        for sgn in (-1, 1):
            lx = cx + sgn * (4.5 * u + stance / 2)
            box(lx - leg_w - 0.5 * u, waist_y, lx + leg_w + 0.5 * u, top + lower_end,
                look.lower)
        box(cx - hips, waist_y, cx + hips, waist_y + 10 * u, look.lower)
    else:  # a dress / skirt: a trapezoid from the hips to the hem
        hem = top + lower_end
        flare = hips + (hem - waist_y) * 0.22
        d.polygon([(cx - hips, waist_y), (cx + hips, waist_y), (cx + flare, hem),
                   (cx - flare, hem)], fill=look.lower)
    # torso
    d.polygon([(cx - sh, neck_y + 3 * u), (cx + sh, neck_y + 3 * u), (cx + waist, waist_y),
               (cx - waist, waist_y)], fill=look.upper)
    # arms: sleeve in the upper colour, the rest skin
    sleeve_end = {"long sleeve": 60 * u, "short sleeve": 34 * u}[truth["sleeve"]]
    hands = []
    for sgn in (-1, 1):
        swing = rng.uniform(-3, 3) * u
        ax = cx + sgn * (sh + 2.5 * u)
        box(ax - 2.5 * u, neck_y + 4 * u, ax + 2.5 * u + swing, top + 62 * u, look.skin)
        box(ax - 2.8 * u, neck_y + 3 * u, ax + 2.8 * u + swing, top + sleeve_end, look.upper)
        hands.append((ax + swing / 2, top + 63 * u))
    # shoulder bag: a strap across the chest and a box at the hip
    if truth["bag"] == "bag":
        s0 = (cx - side * sh, neck_y + 4 * u)
        s1 = (cx + side * (hips + 2 * u), waist_y + 4 * u)
        d.line([s0, s1], fill=look.bag, width=max(1, int(2.2 * u)))
        box(s1[0] - 6 * u, s1[1] - 4 * u, s1[0] + 6 * u, s1[1] + 9 * u, look.bag)
    if truth["backpack"] == "backpack":  # straps over the shoulders
        for sgn in (-1, 1):
            x = cx + sgn * (sh - 4 * u)
            d.line([(x, neck_y + 3 * u), (x, neck_y + 24 * u)], fill=look.bag,
                   width=max(1, int(1.6 * u)))
    # handbag hanging from one hand
    if truth["handbag"] == "handbag":
        hx, hy = hands[0 if side > 0 else 1]
        box(hx - 5 * u, hy + 2 * u, hx + 5 * u, hy + 11 * u, look.bag)
        d.line([(hx - 3 * u, hy + 2 * u), (hx, hy - 1 * u), (hx + 3 * u, hy + 2 * u)],
               fill=look.bag, width=max(1, int(1.2 * u)))
    # neck, head, hair, hat
    box(cx - 2.5 * u, neck_y - 2 * u, cx + 2.5 * u, neck_y + 4 * u, look.skin)
    hx, hy = head_c
    d.ellipse([hx - head_r, hy - head_r, hx + head_r, hy + head_r], fill=look.skin)
    d.pieslice([hx - head_r - 0.5 * u, hy - head_r - 1 * u, hx + head_r + 0.5 * u,
                hy + head_r * 0.7], 180, 360, fill=look.hair)
    if truth["hat"] == "hat":
        box(hx - head_r - 3 * u, hy - head_r * 0.35, hx + head_r + 3 * u,
            hy - head_r * 0.35 + 2.5 * u, look.hat)
        box(hx - head_r * 0.85, hy - head_r - 3.5 * u, hx + head_r * 0.85,
            hy - head_r * 0.35, look.hat)
    # an occluder in front (a passer-by's arm, a pole, a bin) in 15% of the images
    if rng.random() < 0.15:
        ox = rng.uniform(0.1, 0.9) * w
        oy = rng.uniform(0.4, 0.9) * h
        box(ox, oy, ox + rng.uniform(0.05, 0.25) * w, h,
            tuple(rng.randint(30, 200) for _ in range(3)))
    if rng.random() < 0.5:
        im = im.transpose(Image.FLIP_LEFT_RIGHT)
    im = im.resize((size, size), Image.LANCZOS)
    if rng.random() < 0.3:
        im = im.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0)))
    tint, bright = CAMERAS[camera % len(CAMERAS)]
    a = np.asarray(im, dtype=np.float32) * np.array(tint, dtype=np.float32) * bright
    a += np.random.default_rng(rng.getrandbits(32)).normal(0, 4.0, a.shape)
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


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
