import json

import numpy as np
import pytest

from tgir import TgirError
from tgir.data import build, css2d


def _scene(objs):
    return css2d.scene_key([css2d.Obj(tuple(o["cell"]), o["color"], o["shape"], o["size"])
                            for o in objs])


def test_deterministic_from_seed(tmp_path):
    a = css2d.generate(tmp_path / "a", "tiny", seed=11, progress=False)
    b = css2d.generate(tmp_path / "b", "tiny", seed=11, progress=False)
    c = css2d.generate(tmp_path / "c", "tiny", seed=12, progress=False)
    ja, jb, jc = ((p / "css2d.json").read_text() for p in (a, b, c))
    assert ja == jb and ja != jc
    for name in ("train_000000.png", "test_000005.png"):
        assert (a / "images" / name).read_bytes() == (b / "images" / name).read_bytes()


def test_every_template_maps_source_to_target(tiny_css2d):
    doc = css2d.read_annotations(tiny_css2d)
    n = 0
    for split in doc["splits"].values():
        imgs = split["images"]
        for q in split["queries"]:
            src, tgt = _scene(imgs[q["source"]]["objects"]), _scene(imgs[q["target"]]["objects"])
            mod = css2d.parse_mod_text(q["text"])
            if mod["kind"] != "add":  # the text names the existing object correctly
                o = next(o for o in src if list(o.cell) == mod["cell"])
                assert (o.size, o.color, o.shape) == mod["obj"]
            assert css2d.apply_mod(src, mod) == tgt, q["text"]
            assert css2d.mod_text(src, mod) == q["text"]
            n += 1
    assert n > 100


def test_labels_identify_scenes_and_holdout_is_novel(tiny_css2d):
    doc = css2d.read_annotations(tiny_css2d)
    holdout = {tuple(h) for h in doc["params"]["holdout"]}
    assert len(holdout) == 4
    for name, split in doc["splits"].items():
        by_label = {}
        for im in split["images"]:
            key = _scene(im["objects"])
            assert by_label.setdefault(im["label"], key) == key
            if name == "train":
                assert not any((o["color"], o["shape"]) in holdout for o in im["objects"])
        assert len(set(by_label.values())) == len(by_label)  # one label per scene


def test_sources_get_many_distinct_modifications(tiny_css2d):
    doc = css2d.read_annotations(tiny_css2d)
    per = doc["params"]["mods_per_source"]
    qs = doc["splits"]["test"]["queries"]
    from collections import Counter

    counts = Counter(q["source"] for q in qs)
    assert set(counts.values()) == {per}
    for s in counts:
        texts = [q["text"] for q in qs if q["source"] == s]
        assert len(set(texts)) == per


def test_loader_reads_generated_split(tiny_css2d):
    split = build("css2d", tiny_css2d, "test")
    assert split.images.shape[1:] == (64, 64, 3) and split.images.dtype == np.uint8
    assert split.num_queries == len(split.query_target) > 0
    assert (split.images[0] < 255).any()  # something was drawn


def test_loader_errors_name_the_problem(tiny_css2d, tmp_path):
    with pytest.raises(TgirError, match="css2d.json"):
        build("css2d", tmp_path, "train")
    with pytest.raises(TgirError, match="no split 'val'"):
        build("css2d", tiny_css2d, "val")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "css2d.json").write_text("{not json")
    with pytest.raises(TgirError, match="corrupt"):
        build("css2d", broken, "train")


def test_regenerate_replaces_atomically(tmp_path):
    out = css2d.generate(tmp_path / "d", "tiny", seed=1, progress=False)
    before = json.loads((out / "css2d.json").read_text())
    css2d.generate(out, "tiny", seed=2, progress=False)
    after = json.loads((out / "css2d.json").read_text())
    assert before["params"]["seed"] == 1 and after["params"]["seed"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["d"]  # no temp dirs left behind
