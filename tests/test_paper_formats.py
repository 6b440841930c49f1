"""The papers' datasets (issue 5): each loader reads a fixture written in the official layout
through the registry, gets the protocol's queries and relevance right, names the missing file or
field, and a model trains one step and evaluates on it."""

import json
import shutil

import numpy as np
import pytest

from tests import format_fixtures as fx
from tgir import TgirError, config
from tgir.data import build
from tgir.data.types import AttributeSplit, ComposedSplit, TextImageSplit

pytest.importorskip("scipy.io")

WRITERS = {
    "fashioniq": fx.write_fashioniq, "fashion200k": fx.write_fashion200k,
    "shoes": fx.write_shoes, "mit_states": fx.write_mit_states,
    "birds_to_words": fx.write_birds_to_words, "spot_the_diff": fx.write_spot_the_diff,
    "cuhk_pedes": fx.write_cuhk_pedes,
    "icfg_pedes": lambda r: fx.write_cuhk_pedes(r, "ICFG-PEDES.json"),
    "rstpreid": lambda r: fx.write_cuhk_pedes(r, "data_captions.json", "img_path"),
    "cub": fx.write_cub, "flowers": lambda r: fx.write_cub(r, flowers=True),
    "peta": fx.write_peta,
}
EVAL_SPLIT = {"fashioniq": "val"}


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    base = tmp_path_factory.mktemp("formats")
    out = {}
    for name, write in WRITERS.items():
        (base / name).mkdir()
        write(base / name)
        out[name] = base / name
    return out


def test_fashioniq_queries_categories_and_joined_captions(roots):
    val = build("fashioniq", roots["fashioniq"], "val", 16)
    assert isinstance(val, ComposedSplit) and len(val.images) == 18 and val.num_queries == 18
    assert val.query_text[0] == "Is more dress 0 and has longer sleeves 0"
    assert set(val.meta["category_images"]) == {"dress", "shirt", "toptee"}
    assert (val.meta["query_category"] == "shirt").sum() == 6
    train = build("fashioniq", roots["fashioniq"], "train", 16)
    assert train.num_queries == 36  # both caption orders in train
    one = build("fashioniq", roots["fashioniq"], "val.dress", 16)
    assert len(one.images) == 6 and one.num_queries == 6
    sub = val.subset_queries(np.arange(6, 12))
    assert (sub.meta["query_category"] == "shirt").all()


def test_fashion200k_test_queries_and_caption_labels(roots):
    test = build("fashion200k", roots["fashion200k"], "test", 16)
    assert test.num_queries == 10
    caps = test.meta["captions"]
    for s, t, txt in zip(test.query_source, test.query_target, test.query_text, strict=True):
        a, b = caps[s].split(), caps[t].split()
        assert txt == f"replace {next(w for w in a if w not in b)} with " \
                      f"{next(w for w in b if w not in a)}"
        assert test.labels[s] != test.labels[t]
    # two images per description share a label (either is a correct answer)
    assert len(np.unique(test.labels)) == len(test.images) // 2
    train = build("fashion200k", roots["fashion200k"], "train", 16)
    assert train.num_queries > 0
    assert all(t.startswith("replace ") for t in train.query_text)


def test_shoes_split_by_image_lists(roots):
    tr = build("shoes", roots["shoes"], "train", 16)
    te = build("shoes", roots["shoes"], "test", 16)
    assert (len(tr.images), tr.num_queries) == (6, 6)
    assert (len(te.images), te.num_queries) == (4, 4)  # the cross-split caption is in neither
    assert te.query_text[0] == "has a higher heel 0"


def test_mit_states_uses_tirgs_test_nouns(roots):
    te = build("mit_states", roots["mit_states"], "test", 16)
    tr = build("mit_states", roots["mit_states"], "train", 16)
    nouns = {c.split()[1] for c in te.meta["captions"]}
    assert nouns == {"tomato", "sky"} and len(te.images) == 12
    assert te.num_queries == 12 * 2  # every image x the two other adjectives of its noun
    assert set(te.query_text) == {"ripe", "sliced", "old"}
    for s, t, txt in zip(te.query_source, te.query_target, te.query_text, strict=True):
        assert te.meta["captions"][t] == f"{txt} {te.meta['captions'][s].split()[1]}"
    assert tr.num_queries == len(tr.images) == 12


def test_birds_to_words_and_spot_the_diff(roots):
    b = build("birds_to_words", roots["birds_to_words"], "test", 16)
    assert (len(b.images), b.num_queries) == (6, 6)
    bt = build("birds_to_words", roots["birds_to_words"], "train", 16)
    assert bt.num_queries == 16 and "animal2 has a brown tail while animal1 0" in bt.query_text
    s = build("spot_the_diff", roots["spot_the_diff"], "test", 16)
    assert len(s.images) == 6 and s.num_queries == 4  # empty sentences are no query
    assert all(t == q + 1 for q, t in zip(s.query_source, s.query_target, strict=True))


@pytest.mark.parametrize("name", ["cuhk_pedes", "icfg_pedes", "rstpreid"])
def test_person_search_captions(roots, name):
    te = build(name, roots[name], "test", 16)
    assert isinstance(te, TextImageSplit) and len(te.images) == 6 and te.num_queries == 12
    assert sorted(np.unique(te.labels)) == [7, 8, 9]


def test_icfg_has_no_val_split(roots):
    with pytest.raises(TgirError, match="no split 'val'"):
        build("icfg_pedes", roots["icfg_pedes"], "val")


@pytest.mark.parametrize("name", ["cub", "flowers"])
def test_cub_flowers_classes(roots, name):
    te = build(name, roots[name], "test", 16)
    assert len(te.images) == 6 and te.num_queries == 60 and te.meta["protocol"] == "class"
    assert sorted(np.unique(te.labels)) == [0, 1]
    assert len(build(name, roots[name], "train", 16).images) == 9  # trainclasses.txt
    assert len(build(name, roots[name], "trainval", 16).images) == 12


def test_peta_partitions(roots):
    tr = build("peta", roots["peta"], "train", 16)
    te = build("peta", roots["peta"], "test.2", 16)
    assert isinstance(tr, AttributeSplit) and len(tr.images) == 15 and len(te.images) == 10
    assert len(tr.schema) == 35 and tr.schema["attr000"] == ["no attr000", "attr000"]
    assert te.meta["partition"] == 2
    with pytest.raises(TgirError, match="partitions 0..4"):
        build("peta", roots["peta"], "test.9")


@pytest.mark.parametrize("name,missing", [
    ("fashioniq", "captions/cap.dress.val.json"), ("fashion200k", "test_queries.txt"),
    ("shoes", "relative_captions_shoes.json"), ("birds_to_words", "birds-to-words-v1.0.tsv"),
    ("spot_the_diff", "annotations/test.json"), ("cuhk_pedes", "reid_raw.json"),
    ("cub", "testclasses.txt"), ("peta", "PETA.mat")])
def test_missing_annotation_file_is_named(roots, tmp_path, name, missing):
    root = tmp_path / name
    shutil.copytree(roots[name], root)
    (root / missing).unlink()
    with pytest.raises(TgirError, match=missing.split("/")[-1].replace(".", r"\.")):
        build(name, root, EVAL_SPLIT.get(name, "test"))


def test_missing_field_and_image_are_named(roots, tmp_path):
    root = tmp_path / "fiq"
    shutil.copytree(roots["fashioniq"], root)
    p = root / "captions" / "cap.shirt.val.json"
    caps = json.loads(p.read_text())
    del caps[2]["target"]
    p.write_text(json.dumps(caps))
    with pytest.raises(TgirError, match=r"cap\.shirt\.val\.json: entry 2 lacks the field "
                                        r"'target'"):
        build("fashioniq", root, "val")
    root = tmp_path / "pedes"
    shutil.copytree(roots["cuhk_pedes"], root)
    next((root / "imgs" / "CUHK01").glob("0007*.png")).unlink()
    with pytest.raises(TgirError, match=r"1 of 6 cuhk_pedes test files are missing"):
        build("cuhk_pedes", root, "test")
    with pytest.raises(TgirError, match="not found"):
        build("cuhk_pedes", tmp_path / "nowhere", "test")


MODELS = {
    "fashioniq": {"name": "maaf", "embed_dim": 32, "word_dim": 16, "levels": [-1], "blocks": 1,
                  "image_encoder_cfg": {"widths": [8, 16, 32]}},
    "birds_to_words": {"name": "tirg", "embed_dim": 32, "word_dim": 16,
                       "image_encoder_cfg": {"widths": [8, 16, 32]}},
    "cuhk_pedes": {"name": "hgan", "image_encoder": "small_resnet", "embed_dim": 32,
                   "local_dim": 16, "scorer_hidden": 16,
                   "image_encoder_cfg": {"widths": [8, 16, 32]}},
    "cub": {"name": "hgan", "image_encoder": "small_resnet", "embed_dim": 32,
            "local_dim": 16, "scorer_hidden": 16,
            "image_encoder_cfg": {"widths": [8, 16, 32]}},
    "peta": {"name": "aihm", "image_encoder": "small_resnet", "dim_loc": 16, "dim_glo": 32,
             "dim_cm": 16},
}
EXPECT = {"fashioniq": {"R@1", "dress R@10", "avg R@50", "(R10+R50)/2"},
          "birds_to_words": {"R@1", "R@10"},
          "cuhk_pedes": {"t2i R@1", "t2i mAP", "t2i mINP", "i2t R@1"},
          "cub": {"t2i AP@50", "i2t R@1"}, "peta": {"R@1", "mAP", "mINP"}}


@pytest.mark.parametrize("name", list(MODELS))
def test_train_one_step_and_evaluate(roots, tmp_path, name):
    from tgir.engine.train import train
    from tgir.eval.evaluate import evaluate_run

    cfg = config.from_dict({
        "data": {"name": name, "root": str(roots[name]), "image_size": 32,
                 "val_fraction": 0.0, "eval_split": EVAL_SPLIT.get(name, "test")},
        "model": MODELS[name],
        "train": {"steps": 1, "batch_size": 4, "optimizer": "adam", "queries_per_source": 1}})
    train(cfg, tmp_path / "run", progress=False)
    r = evaluate_run(tmp_path / "run", progress=False)
    assert EXPECT[name] <= set(r["metrics"]), sorted(r["metrics"])
    assert all(0.0 <= v <= 1.0 for v in r["metrics"].values())


def test_every_shipped_config_names_a_known_dataset_and_valid_model_options():
    import inspect
    from pathlib import Path

    from tgir.data import registry as data_registry
    from tgir.models import registry as model_registry

    files = sorted(Path(__file__).parents[1].glob("configs/*/*.yaml"))
    assert len(files) >= 60
    for f in files:
        cfg = config.load(f)
        assert cfg.data.name in data_registry.names(), f
        cls = model_registry._MODELS[cfg.model["name"]]
        params = inspect.signature(cls.__init__).parameters
        unknown = set(cfg.model) - {"name", "vocab_size", "num_ids"} - set(params)
        assert not unknown or any(p.kind == p.VAR_KEYWORD for p in params.values()), (f, unknown)
    datasets = {config.load(f).data.name for f in files}
    assert set(WRITERS) <= datasets  # every paper dataset has configs


def test_reference_kept_or_excluded_and_category_galleries(monkeypatch):
    """A query embedding equal to its reference image's: kept, the reference ranks first (a
    miss); excluded, the target (the next best) is found. Per-category galleries only hold
    their category's images."""
    from tgir.eval import evaluate as ev

    g = np.eye(4, dtype=np.float32)
    g[1, 0] = 0.5  # image 1 is the nearest to image 0 after itself
    g[3, 2] = 0.5
    split = ComposedSplit("toy", np.zeros((4, 2, 2, 3), np.uint8), np.arange(4),
                          np.array([0, 2]), ["a", "b"], np.array([1, 3]),
                          meta={"category_images": {"x": np.array([0, 1]),
                                                    "y": np.array([2, 3])},
                                "query_category": np.array(["x", "y"])})
    monkeypatch.setattr(ev, "embed_images", lambda m, imgs, progress=False: g[:len(imgs)])
    monkeypatch.setattr(ev, "embed_queries", lambda m, v, imgs, t, progress=False: g[[0, 2]])
    out = ev.evaluate_split(None, None, split, ks=(1, 10))
    kept = ev.evaluate_split(None, None, split, ks=(1, 10), keep_reference=True)
    assert out["R@1"] == 1.0 and kept["R@1"] == 0.0
    assert out["x R@10"] == 1.0 and out["avg R@50"] == 1.0 and out["(R10+R50)/2"] == 1.0


PAPER_CONFIGS = sorted(
    str(p.relative_to(p.parents[2])) for p in
    __import__("pathlib").Path(__file__).parents[1].glob("configs/*/*.yaml")
    if p.parent.name in {"fashioniq", "fashion200k", "shoes", "mit_states", "birds_to_words",
                         "spot_the_diff", "cuhk_pedes", "icfg_pedes", "rstpreid", "cub",
                         "flowers", "peta"})


@pytest.mark.parametrize("path", PAPER_CONFIGS)
def test_shipped_paper_config_trains_and_evaluates_on_the_fixture(roots, tmp_path, path):
    """`tgir train configs/<dataset>/<model>.yaml --set data.root=...` works for every paper
    config (a small backbone and one step here; the schedule is the paper's)."""
    from pathlib import Path

    from tgir.engine.train import train
    from tgir.eval.evaluate import evaluate_run

    root = Path(__file__).parents[1]
    name = config.load(root / path).data.name
    small = ["model.image_encoder=small_resnet", "model.image_encoder_cfg={widths: [8, 16, 32]}"]
    model = config.load(root / path).model["name"]
    dims = {"hgan": ["model.embed_dim=32", "model.local_dim=16", "model.scorer_hidden=16"],
            "aihm": ["model.dim_loc=16", "model.dim_glo=32", "model.dim_cm=16"],
            "attr_classifier": []}.get(model, ["model.embed_dim=32", "model.word_dim=16"])
    cfg = config.load(root / path, [f"data.root={roots[name]}", "data.image_size=32",
                                    "data.val_fraction=0", "train.steps=1",
                                    "train.batch_size=4", *small, *dims])
    train(cfg, tmp_path / "run", progress=False)
    r = evaluate_run(tmp_path / "run", progress=False)
    assert r["metrics"] and all(0.0 <= v <= 1.0 for v in r["metrics"].values())
