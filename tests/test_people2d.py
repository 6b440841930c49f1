"""people2d (issue 22): Market-1501's attribute schema, the cited rates, noise, zero-shot split."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest

from tgir import TgirError
from tgir.data import build, people2d
from tgir.data import people2d_stats as st
from tgir.data.catalog import read_catalog


@pytest.fixture(scope="module")
def tiny_people(tmp_path_factory):
    return people2d.generate(tmp_path_factory.mktemp("p2") / "people2d", "tiny", progress=False)


def test_positive_rate_inverts_a_confusion_matrix():
    # 1000 samples, 300 positive; classifier: TP 240, FP 60 -> P 0.8, R 0.8, acc (240+640)/1000
    assert st.positive_rate(0.88, 0.8, 0.8) == pytest.approx(0.3)
    assert st.positive_rate(0.998, 0.0, 0.0) == pytest.approx(0.002)  # finds no positive


def test_rates_come_from_the_cited_table():
    m = st.marginals()
    assert m["gender"]["female"] == pytest.approx(0.441, abs=1e-3)
    assert m["sleeve"]["short sleeve"] == pytest.approx(0.935, abs=1e-3)
    assert m["lower type"]["dress"] == pytest.approx(0.118, abs=1e-3)
    for attr, dist in m.items():
        assert set(dist) == set(people2d.SCHEMA[attr]), attr
        assert sum(dist.values()) == pytest.approx(1.0)
    up, low = st.colour_blank_rates()
    assert up == pytest.approx(0.090, abs=1e-3) and low == pytest.approx(0.049, abs=1e-3)


def test_sampled_identities_keep_the_marginals_and_the_dependencies():
    rng = random.Random(0)
    ids = [st.sample_identity(rng) for _ in range(20000)]
    m = st.marginals()
    for attr in ("gender", "hair", "lower type", "handbag", "lower length", "backpack"):
        pos = people2d.SCHEMA[attr][1]
        got = np.mean([i[attr] == pos for i in ids])
        assert got == pytest.approx(m[attr][pos], abs=0.015), attr
    female_of_long = np.mean([i["gender"] == "female" for i in ids if i["hair"] == "long hair"])
    assert female_of_long == pytest.approx(st.ASSUMED["female share of long hair"], abs=0.02)


def test_annotation_noise_rate():
    rng = random.Random(1)
    truth = {a: v[0] for a, v in people2d.SCHEMA.items()}
    flips = Counter()
    for _ in range(20000):
        lab = people2d.annotate(truth, rng, st.NOISE)
        flips.update(a for a in truth if lab[a] != truth[a])
        assert all(lab[a] in people2d.SCHEMA[a] for a in lab)
    for a, rate in st.NOISE.items():
        assert flips[a] / 20000 == pytest.approx(rate, abs=0.01), a


def test_generated_split_is_zero_shot_with_several_images_per_identity(tiny_people):
    tr, te = build("people2d_attr", tiny_people, "train", 64), build("people2d_attr",
                                                                      tiny_people, "test", 64)
    assert tr.images.shape[1:] == (64, 64, 3) and list(tr.schema) == people2d.ATTRIBUTES
    seen = {tuple(r) for r in tr.attributes}
    assert not any(tuple(q) in seen for q in te.queries())
    pids = Counter(te.meta["person_ids"])
    assert set(pids.values()) == {people2d.SCALES["tiny"].images_per_id}
    # every image of an identity is relevant to its identity's query
    rel = te.relevance(te.queries())
    assert rel.sum() >= len(te.images)
    doc = people2d.read_annotations(tiny_people)
    assert doc["noise"] == st.NOISE and doc["stats_sources"]


def test_truth_labels_and_catalog(tiny_people):
    truth = people2d.load_attributes(tiny_people, "test", 32, labels="truth")
    noisy = people2d.load_attributes(tiny_people, "test", 32)
    assert truth.attributes.shape == noisy.attributes.shape
    kind, items = read_catalog(tiny_people, "test")
    assert kind == "people2d" and len(items) == len(noisy.images)
    assert "hair" in items[0].text
    with pytest.raises(TgirError, match="no split 'val'"):
        people2d.load_attributes(tiny_people, "val")
    with pytest.raises(TgirError, match="labels"):
        people2d.load_attributes(tiny_people, "test", labels="clean")


def test_missing_annotation_file_names_the_generate_command(tmp_path):
    with pytest.raises(TgirError, match="tgir generate people2d"):
        people2d.load_attributes(tmp_path, "train")


def test_renders_differ_across_an_identitys_images_but_keep_its_attributes():
    rng = random.Random(3)
    t = st.sample_identity(rng)
    look = people2d.Look.draw(t, rng)
    a = np.asarray(people2d.render(t, look, rng, 64, 0), dtype=np.float32)
    b = np.asarray(people2d.render(t, look, rng, 64, 3), dtype=np.float32)
    assert a.shape == (64, 64, 3) and np.abs(a - b).mean() > 5
