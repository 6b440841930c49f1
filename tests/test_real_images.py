"""emoji and clipart: generators on small subsets (Debian fonts-noto-color-emoji,
unicode-data, unicode-cldr-core and openclipart-svg; `make test` installs them)."""

import json

import numpy as np
import pytest
from PIL import Image

from tgir.data import build
from tgir.data import clipart as C
from tgir.data import emoji as E
from tgir.data.catalog import read_catalog
from tgir.data.sheet import contact_sheet

needs_emoji = pytest.mark.skipif(not (E.FONT.is_file() and E.EMOJI_TEST.is_file()),
                                 reason="fonts-noto-color-emoji / unicode-data not installed")
needs_clipart = pytest.mark.skipif(not C.SVG_ROOT.is_dir(),
                                   reason="openclipart-svg not installed")


@pytest.mark.parametrize("name,subgroup,expected", [
    ("woman firefighter: dark skin tone", "person-role",
     {"gender": "woman", "skin": "dark", "hair": "none", "role": "firefighter"}),
    ("man: medium-light skin tone, red hair", "person",
     {"gender": "man", "skin": "medium-light", "hair": "red hair", "role": "none"}),
    ("person running", "person-activity",
     {"gender": "person", "skin": "none", "hair": "none", "role": "running"}),
    ("old woman: light skin tone", "person",
     {"gender": "old woman", "skin": "light", "hair": "none", "role": "none"}),
    ("ninja: medium skin tone", "person-fantasy",
     {"gender": "person", "skin": "medium", "hair": "none", "role": "ninja"}),
])
def test_attribute_parsing(name, subgroup, expected):
    assert E.parse_attributes(name, subgroup) == expected


def test_non_person_and_multi_person_names_have_no_attributes():
    assert E.parse_attributes("grinning face", "face-smiling") is None
    assert E.parse_attributes("kiss: woman, man, dark skin tone", "family") is None


@pytest.fixture(scope="module")
def emoji_dir(tmp_path_factory):
    if not (E.FONT.is_file() and E.EMOJI_TEST.is_file()):
        pytest.skip("fonts-noto-color-emoji / unicode-data not installed")
    # the People & Body person entries start around line 400 of emoji-test.txt
    return E.generate(tmp_path_factory.mktemp("e") / "emoji", size=64, limit=1700,
                      progress=False)


@needs_emoji
def test_emoji_generation(emoji_dir):
    doc = E.read_annotations(emoji_dir)
    c = doc["counts"]
    assert c["entries"] == 1700 and c["rendered"] + sum(c["skipped"].values()) == 1700
    assert c["rendered"] > 1600
    for it in doc["items"][::50]:
        a = np.asarray(Image.open(emoji_dir / it["file"]))
        assert a.shape == (64, 64, 3) and a.min() < 200  # not blank
    fire = next(it for it in doc["items"] if it["name"] == "woman firefighter: dark skin tone")
    assert fire["attributes"]["role"] == "firefighter" and "firetruck" in fire["keywords"]
    assert fire["group"] == "People & Body" and fire["subgroup"] == "person-role"


@needs_emoji
def test_emoji_splits(emoji_dir):
    doc = E.read_annotations(emoji_dir)
    by_id = {it["id"]: it for it in doc["items"]}
    bases = {s: {it["base"] for it in doc["items"] if it["split"] == s} for s in ("train", "test")}
    assert bases["train"] and bases["test"] and not bases["train"] & bases["test"]
    for split, pairs in doc["composed"].items():
        assert pairs
        for p in pairs:
            s, t = by_id[p["source"]], by_id[p["target"]]
            assert s["split"] == t["split"] == split
            diff = [k for k in ("gender", "skin", "hair", "role")
                    if s["attributes"][k] != t["attributes"][k]]
            assert diff == [p["attr"]]
    kinds = {p["attr"] for p in doc["composed"]["test"]}
    assert kinds == {"skin", "hair", "gender"}
    combo = {s: {tuple(it["attributes"].values()) for it in doc["items"]
                 if it["attr_split"] == s} for s in ("train", "test")}
    assert combo["test"] and not combo["train"] & combo["test"]  # zero-shot


def test_emoji_skips_what_the_font_cannot_draw():
    if not E.FONT.is_file():
        pytest.skip("fonts-noto-color-emoji not installed")
    r = E._Renderer(32)
    assert r.render("\U0001F600") is not None
    assert r.render("\U0010FFFD") is None  # nothing drawn
    assert r.render("\U0001F600\U0001F680\U0001F600") is None  # falls apart into glyphs


@needs_emoji
def test_emoji_loader_catalog_and_sheet(emoji_dir, tmp_path):
    s = build("emoji", emoji_dir, "test", 32)
    assert s.images.shape[1:] == (32, 32, 3) and s.num_queries > 50
    kind, items = read_catalog(emoji_dir, "test")
    assert kind == "emoji" and len(items) == len(s.images)
    out = contact_sheet(emoji_dir, tmp_path / "sheet.png", n=8)
    assert Image.open(out).size[0] > 500


@needs_emoji
def test_emoji_pairs_for_the_joint_embedding(emoji_dir):
    tr = build("emoji_pairs", emoji_dir, "train", 32)
    te = build("emoji_pairs", emoji_dir, "test", 32)
    assert tr.vocabulary == te.vocabulary and {"red", "heart"} <= set(tr.vocabulary)
    assert set(tr.image_ids).isdisjoint(te.image_ids)
    i = tr.image_ids.index(next(it for it in tr.image_ids if it == "2764-fe0f"))
    assert tr.texts[i].startswith("red heart") and {"red", "heart"} <= set(tr.words[i])


@needs_clipart
def test_clipart_generation(tmp_path):
    out = C.generate(tmp_path / "clip", size=48, limit=60, min_count=2, progress=False)
    doc = C.read_annotations(out)
    c = doc["counts"]
    assert c["svgs"] == 60 and c["rendered"] + sum(c["skipped"].values()) == 60
    assert c["rendered"] >= 50
    for it in doc["items"]:
        assert it["title"] and it["categories"]
        assert np.asarray(Image.open(out / it["file"])).min() < 250
    assert all(v >= 2 for v in doc["vocabulary"].values())
    assert {it["split"] for it in doc["items"]} == {"train", "test"}
    # Sadeh et al. pairs: metadata words = stemmed nouns / adjectives of title + category path
    pairs = build("clipart", out, "train")
    assert pairs.vocabulary and all(set(w) <= set(pairs.vocabulary) for w in pairs.words)
    assert len(pairs.images) + pairs.meta["dropped"] == sum(
        it["split"] == "train" for it in doc["items"])
    for t, cats in zip(pairs.texts, pairs.meta["categories"], strict=True):
        assert cats[0].split("/")[0].replace("_", " ") in t  # the category path is in the text
    assert list(out.glob("words-*.json"))  # the tagging is cached


def test_clipart_bad_svg_is_counted_not_fatal(tmp_path):
    pytest.importorskip("cairosvg")
    root = tmp_path / "svg" / "things"
    root.mkdir(parents=True)
    (root / "good.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
        '<title>red box</title><rect width="10" height="10" fill="red"/></svg>')
    (root / "broken.svg").write_text("<svg><rect")
    (root / "empty.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="10" '
                                    'height="10"></svg>')
    out = C.generate(tmp_path / "clip", size=16, svg_root=tmp_path / "svg", min_count=1,
                     progress=False)
    doc = json.loads((out / "clipart.json").read_text())
    assert doc["counts"]["rendered"] == 1 and doc["items"][0]["title"] == "red box"
    assert doc["counts"]["skipped"] == {"not well-formed XML": 1, "rendered blank": 1}
