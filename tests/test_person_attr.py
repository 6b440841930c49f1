"""Market-1501 attributes: a fixture written in the official layout (market_attribute.mat
struct + bounding_box_* folders), loaded through the registry, trained one step, evaluated."""

import numpy as np
import pytest
from PIL import Image

from tgir import TgirError, config
from tgir.data import build
from tgir.data.formats.person_attr import DUKE, MARKET, SCHEMA

scipy_io = pytest.importorskip("scipy.io")


def _struct(ids, rng, spec=MARKET):
    d = {f: rng.integers(1, 3, (1, len(ids))) for f in spec.binary}
    if spec.age:
        d["age"] = rng.integers(1, len(spec.age) + 1, (1, len(ids)))
    for prefix, colors in (("up", spec.up_colors), ("down", spec.down_colors)):
        pick = rng.integers(0, len(colors), len(ids))
        for j, c in enumerate(colors):
            d[f"{prefix}{c}"] = np.where(pick == j, 2, 1)[None]
    d["image_index"] = np.array([ids], dtype=object)
    return d


def write_market(root, rng=None, spec=MARKET):
    rng = rng or np.random.default_rng(0)
    train_ids, test_ids = ["0002", "0007", "0010", "0011"], ["0001", "0003", "0004"]
    tr, te = _struct(train_ids, rng, spec), _struct(test_ids, rng, spec)
    for k in [f"down{c}" for c in spec.down_colors]:  # identity 0001: no lower colour
        te[k][0, 0] = 1
    scipy_io.savemat(root / f"{spec.struct}.mat", {spec.struct: {"train": tr, "test": te}})
    for folder, ids in (("bounding_box_train", train_ids),
                        ("bounding_box_test", [*test_ids, "0000", "-1"])):
        (root / folder).mkdir()
        for pid in ids:
            for cam in (1, 2):
                im = rng.integers(0, 255, (128, 64, 3), dtype=np.uint8)
                Image.fromarray(im).save(root / folder / f"{pid}_c{cam}s1_000151_01.jpg")
    return tr, te


def test_market_attributes_load_in_the_official_layout(tmp_path):
    tr_raw, te_raw = write_market(tmp_path)
    tr = build("market1501_attr", tmp_path, "train", 32)
    te = build("market1501_attr", tmp_path, "test", 32)
    assert tr.images.shape == (8, 32, 32, 3) and te.images.shape == (6, 32, 32, 3)  # no 0000/-1
    assert list(tr.schema) == list(SCHEMA) and len(tr.schema) == 12
    row = dict(zip(te.schema, te.attributes[0], strict=True))
    assert te.meta["identities"][0] == "0001"
    assert te.schema["downcolor"][row["downcolor"]] == "unknown"
    assert te.schema["gender"][row["gender"]] == ("male", "female")[te_raw["gender"][0, 0] - 1]
    assert te.schema["age"][row["age"]] == ("young", "teenager", "adult", "old")[
        te_raw["age"][0, 0] - 1]
    # both images of one identity share its attributes
    assert (te.attributes[0] == te.attributes[1]).all()


def test_market_attributes_missing_file_or_field_is_named(tmp_path):
    with pytest.raises(TgirError, match="market_attribute.mat"):
        build("market1501_attr", tmp_path, "train")
    tr, te = write_market(tmp_path)
    del tr["hat"]
    scipy_io.savemat(tmp_path / "market_attribute.mat",
                     {"market_attribute": {"train": tr, "test": te}})
    with pytest.raises(TgirError, match="lacks the field 'hat'"):
        build("market1501_attr", tmp_path, "train")


def test_market_attributes_train_one_step_and_evaluate(tmp_path):
    from tgir.engine.train import train
    from tgir.eval.evaluate import evaluate_run

    (tmp_path / "m").mkdir()
    write_market(tmp_path / "m")
    cfg = config.from_dict({
        "data": {"name": "market1501_attr", "root": str(tmp_path / "m"), "image_size": 32,
                 "val_fraction": 0.0},
        "model": {"name": "aihm", "image_encoder": "small_resnet", "dim_loc": 32,
                  "dim_glo": 64, "dim_cm": 32},
        "train": {"steps": 1, "batch_size": 4, "optimizer": "adam"}})
    train(cfg, tmp_path / "run", progress=False)
    r = evaluate_run(tmp_path / "run", progress=False)
    assert set(r["metrics"]) == {"R@1", "R@5", "mAP", "mINP"} and r["queries"] == 3


def test_duke_attributes_share_the_layout(tmp_path):
    (tmp_path / "attribute").mkdir()
    tr_raw, te_raw = write_market(tmp_path, spec=DUKE)
    (tmp_path / "duke_attribute.mat").rename(tmp_path / "attribute" / "duke_attribute.mat")
    te = build("duke_attr", tmp_path, "test", 32)
    assert list(te.schema) == [*DUKE.binary, "upcolor", "downcolor"] and "age" not in te.schema
    row = dict(zip(te.schema, te.attributes[0], strict=True))
    assert te.schema["shoes"][row["shoes"]] == ("dark shoes", "light shoes")[
        te_raw["shoes"][0, 0] - 1]
    assert te.schema["downcolor"][row["downcolor"]] == "unknown"
    (tmp_path / "empty").mkdir()
    with pytest.raises(TgirError, match="duke_attribute.mat"):
        build("duke_attr", tmp_path / "empty", "test")
