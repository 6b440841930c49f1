"""The original CSS layout of TIRG: a pickled .npy dict + images/css_{split}_{idx:06d}.png."""

import numpy as np
import pytest
from PIL import Image

from tgir import TgirError
from tgir.data import build


def _write_css_fixture(root):
    objs = [
        [{"pos": [0.2, 0.2], "color": "red", "shape": "circle", "size": "large"}],
        [{"pos": [0.2, 0.2], "color": "blue", "shape": "circle", "size": "large"}],
        [{"pos": [0.2, 0.2], "color": "red", "shape": "circle", "size": "large"},
         {"pos": [0.8, 0.8], "color": "gray", "shape": "triangle", "size": "small"}],
        [{"pos": [0.2, 0.2], "color": "blue", "shape": "circle", "size": "large"}],  # dup of 1
    ]
    data = {"test": {"objects_img": objs,
                     "mods": [{"from": [0], "to": [1], "to_str": "make red circle blue"},
                              {"from": [2, 0], "to": [0, 2],
                               "to_str": "remove gray triangle"}]}}
    np.save(root / "css_toy_dataset_novel2_small.dup.npy", data, allow_pickle=True)
    (root / "images").mkdir()
    for i in range(len(objs)):
        Image.new("RGB", (64, 64), (255, 255, 255 - i)).save(
            root / "images" / f"css_test_{i:06d}.png")


def test_reads_official_layout(tmp_path):
    _write_css_fixture(tmp_path)
    s = build("css", tmp_path, "test")
    assert s.images.shape == (4, 64, 64, 3)
    assert s.query_text == ["make red circle blue", "remove gray triangle",
                            "remove gray triangle"]
    assert s.query_source.tolist() == [0, 2, 0] and s.query_target.tolist() == [1, 0, 2]
    assert s.labels[1] == s.labels[3] and len(set(s.labels.tolist())) == 3
    assert s.image_ids[2] == "css_test_000002"


def test_missing_image_is_named(tmp_path):
    _write_css_fixture(tmp_path)
    (tmp_path / "images" / "css_test_000003.png").unlink()
    with pytest.raises(TgirError, match="css_test_000003.png"):
        build("css", tmp_path, "test")


def test_missing_annotation_is_named(tmp_path):
    with pytest.raises(TgirError, match="css_toy_dataset_novel2_small.dup.npy"):
        build("css", tmp_path, "test")
