"""The Market-1501 attribute statistics behind people2d (issue 22), each figure with its source.

What is published, and used as is:

- **Marginal rates.** No positive rates of ``market_attribute.mat`` are published as such (a
  search of the annotation repository, its issues, the APR paper's abstract and re-ID / PAR
  code found none). What is published is a per-attribute table for the Market-1501 *gallery*
  of a ResNet-50 baseline with binary classifiers at threshold 0.5: accuracy, precision and
  recall (``GALLERY_TABLE``, from the README of
  github.com/Yukun-Huang/Person-Attribute-Recognition-MarketDuke, table "Market-1501
  gallery"; its loader subtracts 1 from the .mat codes, so "positive" is each attribute's
  second value: female, long hair, short sleeve, short lower, pants, yes). With TP = R p and
  FP = TP (1/P - 1), the error rate is 1 - acc = p (1 - R (2 - 1/P)), so the positive rate is
  p = (1 - acc) / (1 - R (2 - 1/P)) (p = 1 - acc where P = R = 0: every positive missed).
  These are rates per gallery image (the 750 test identities, weighted by their images), to
  the table's 3 decimals. ``positive_rate`` computes them here, so the arithmetic can be
  checked against the quoted table.
- **Colour label defects.** The README of the annotation (github.com/vana77/Market-1501_
  Attribute) says exactly one upper and one lower colour is "yes" per identity, yet the
  derived colour rates sum to 0.910 (upper) and 0.951 (lower): 9.0 % / 4.9 % of the images
  have no colour labelled. This agrees with a public list of about 230 "UP BLANK" /
  "DOWN BLANK" identities (github.com/th-truong/explainable-id-reid,
  ``src/dataset_util/inconsistencies.md``), and the maintainers confirm hand-annotation
  errors (vana77/Market-1501_Attribute issue 5: "We annotate the dataset by hand, which
  inevitably introduces some annotation error"). people2d has a categorical colour, so a
  missing colour becomes a wrong one at the same rate (``NOISE``).

What is not published (searched for, not found), and therefore *assumed*, fixed before any
model was trained on people2d and never tuned (``ASSUMED``):

- the correlations between attributes: no co-occurrence or correlation figure of the Market-1501
  annotation is published in a form we could read. The assumed structure is the one the
  attribute names imply: gender drives hair length, dress and handbag; a dress is mostly
  short. Each is given as one number (the share of the positives that are female, or the
  share of dresses that are short), and the conditional rates are solved so that every
  marginal stays the published one;
- the label-noise rate of the binary and age attributes: the measured colour rate of the
  lower body (4.9 %) is carried over.
"""

from __future__ import annotations

import random

# attribute -> (accuracy, precision, recall) on the Market-1501 gallery; source above
GALLERY_TABLE: dict[str, tuple[float, float, float]] = {
    "young": (0.998, 0.000, 0.000), "teenager": (0.855, 0.907, 0.930),
    "adult": (0.880, 0.502, 0.240), "old": (0.945, 0.000, 0.000),
    "backpack": (0.760, 0.550, 0.229), "bag": (0.739, 0.321, 0.066),
    "handbag": (0.902, 0.147, 0.008), "clothes": (0.867, 0.916, 0.935),
    "down": (0.865, 0.917, 0.879), "up": (0.935, 0.935, 1.000),
    "hair": (0.791, 0.777, 0.592), "hat": (0.971, 1.000, 0.003),
    "gender": (0.780, 0.764, 0.725),
    "upblack": (0.904, 0.663, 0.574), "upwhite": (0.869, 0.732, 0.797),
    "upred": (0.941, 0.704, 0.742), "uppurple": (0.974, 0.557, 0.353),
    "upyellow": (0.968, 0.904, 0.723), "upgray": (0.879, 0.621, 0.242),
    "upblue": (0.924, 0.705, 0.152), "upgreen": (0.952, 0.726, 0.545),
    "downblack": (0.834, 0.756, 0.841), "downwhite": (0.943, 0.474, 0.484),
    "downpink": (0.981, 0.682, 0.552), "downpurple": (0.992, 0.000, 0.000),
    "downyellow": (0.995, 0.000, 0.000), "downgray": (0.848, 0.689, 0.238),
    "downblue": (0.822, 0.685, 0.206), "downgreen": (0.973, 0.600, 0.042),
    "downbrown": (0.930, 0.490, 0.309),
}
UPPER = ["black", "white", "red", "purple", "yellow", "gray", "blue", "green"]
LOWER = ["black", "white", "pink", "purple", "yellow", "gray", "blue", "green", "brown"]
AGES = ["young", "teenager", "adult", "old"]

# assumed dependency strengths (not published; see the module docstring)
ASSUMED = {"female share of long hair": 0.85, "female share of dresses": 0.95,
           "female share of handbags": 0.75, "short share of dresses": 0.85,
           "binary / age label noise": "the lower-colour rate"}


def positive_rate(acc: float, precision: float, recall: float) -> float:
    """p = (1 - acc) / (1 - R (2 - 1/P)): a class's rate from a binary classifier's
    accuracy, precision and recall (1 - acc when it finds no positive at all)."""
    if precision == 0.0 or recall == 0.0:
        return 1.0 - acc
    return (1.0 - acc) / (1.0 - recall * (2.0 - 1.0 / precision))


def _rates() -> dict[str, float]:
    return {k: positive_rate(*v) for k, v in GALLERY_TABLE.items()}


def marginals() -> dict[str, dict[str, float]]:
    """The derived distribution of each people2d attribute (categoricals renormalised)."""
    r = _rates()

    def norm(d: dict[str, float]) -> dict[str, float]:
        s = sum(d.values())
        return {k: v / s for k, v in d.items()}

    def binary(neg: str, pos: str, key: str) -> dict[str, float]:
        return {neg: 1.0 - r[key], pos: r[key]}

    return {
        "gender": binary("male", "female", "gender"),
        "hair": binary("short hair", "long hair", "hair"),
        "sleeve": binary("long sleeve", "short sleeve", "up"),
        "lower length": binary("long lower", "short lower", "down"),
        "lower type": {"dress": 1.0 - r["clothes"], "pants": r["clothes"]},
        "hat": binary("no hat", "hat", "hat"),
        "backpack": binary("no backpack", "backpack", "backpack"),
        "bag": binary("no bag", "bag", "bag"),
        "handbag": binary("no handbag", "handbag", "handbag"),
        "age": norm({a: r[a] for a in AGES}),
        "upper color": norm({c: r[f"up{c}"] for c in UPPER}),
        "lower color": norm({c: r[f"down{c}"] for c in LOWER}),
    }


def colour_blank_rates() -> tuple[float, float]:
    """Share of gallery images with no upper / lower colour labelled (1 - sum of rates)."""
    r = _rates()
    return (1.0 - sum(r[f"up{c}"] for c in UPPER), 1.0 - sum(r[f"down{c}"] for c in LOWER))


def _conditional(p_pos: float, p_female: float, female_share: float) -> tuple[float, float]:
    """P(positive | female), P(positive | male) for a positive rate ``p_pos`` of which
    ``female_share`` is female: the marginal stays ``p_pos``."""
    return (min(1.0, p_pos * female_share / p_female),
            min(1.0, p_pos * (1.0 - female_share) / (1.0 - p_female)))


_up_blank, _low_blank = colour_blank_rates()
NOISE: dict[str, float] = {"upper color": _up_blank, "lower color": _low_blank,
                           **{a: _low_blank for a in ("gender", "hair", "sleeve",
                                                      "lower length", "lower type", "hat",
                                                      "backpack", "bag", "handbag", "age")}}
STATS = {"marginals": marginals(), "assumed": ASSUMED, "noise": NOISE,
         "sources": ["github.com/Yukun-Huang/Person-Attribute-Recognition-MarketDuke README, "
                     "table 'Market-1501 gallery' (accuracy / precision / recall -> rates)",
                     "github.com/vana77/Market-1501_Attribute README (schema, one colour "
                     "per identity) and issue 5 (hand-annotation errors)",
                     "github.com/th-truong/explainable-id-reid "
                     "src/dataset_util/inconsistencies.md (identities without a colour)"]}


def _draw(rng: random.Random, dist: dict[str, float]) -> str:
    x, acc = rng.random(), 0.0
    for k, v in dist.items():
        acc += v
        if x < acc:
            return k
    return k


def sample_identity(rng: random.Random) -> dict[str, str]:
    """One identity's true attributes: the published marginals, with the assumed gender,
    dress-length dependencies (every marginal unchanged)."""
    m = STATS["marginals"]
    pf = m["gender"]["female"]
    out = {"gender": _draw(rng, m["gender"])}
    female = out["gender"] == "female"

    def by_gender(attr: str, neg: str, pos: str, share_key: str) -> str:
        pos_f, pos_m = _conditional(m[attr][pos], pf, ASSUMED[share_key])
        return pos if rng.random() < (pos_f if female else pos_m) else neg

    out["hair"] = by_gender("hair", "short hair", "long hair", "female share of long hair")
    out["lower type"] = by_gender("lower type", "pants", "dress", "female share of dresses")
    out["handbag"] = by_gender("handbag", "no handbag", "handbag", "female share of handbags")
    # lower length given the type: dresses mostly short, pants take the rest of the marginal
    p_short, p_dress = m["lower length"]["short lower"], m["lower type"]["dress"]
    s_dress = ASSUMED["short share of dresses"]
    s_pants = (p_short - p_dress * s_dress) / (1.0 - p_dress)
    short = rng.random() < (s_dress if out["lower type"] == "dress" else s_pants)
    out["lower length"] = "short lower" if short else "long lower"
    for attr in ("sleeve", "hat", "backpack", "bag", "age", "upper color", "lower color"):
        out[attr] = _draw(rng, m[attr])
    return out
