"""The command line: --help everywhere, and bad input -> one-line error, exit 2, no damage."""

import hashlib
import json

import pytest
import yaml

from tgir.cli import main


def _digest(d):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(d.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tiny_config(tiny_css2d, tmp_path_factory):
    p = tmp_path_factory.mktemp("cfg") / "tiny.yaml"
    p.write_text(yaml.safe_dump({
        "data": {"name": "css2d", "root": str(tiny_css2d)},
        "model": {"name": "maaf", "embed_dim": 32, "word_dim": 16, "levels": [-1], "blocks": 1,
                  "image_encoder_cfg": {"widths": [8, 16, 32]}},
        "train": {"steps": 4, "batch_size": 8, "log_every": 2},
    }))
    return p


@pytest.fixture(scope="module")
def trained_run(tiny_config, tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "maaf"
    assert main(["train", str(tiny_config), "--out", str(run), "-q"]) == 0
    return run


def _one_line_error(capsys, needle):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tgir: error:") and needle in err[0], err
    return err[0]


@pytest.mark.parametrize("cmd", [[], ["generate"], ["train"], ["eval"], ["search"], ["demo"]])
def test_help(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main(cmd + ["--help"])
    assert e.value.code == 0
    assert len(capsys.readouterr().out) > 200


def test_generate_train_eval_search(trained_run, tiny_css2d, capsys, tmp_path):
    assert main(["eval", str(trained_run), "-q"]) == 0
    out = capsys.readouterr().out
    assert "R@1" in out and (trained_run / "metrics.json").is_file()
    m = json.loads((trained_run / "metrics.json").read_text())["metrics"]
    assert 0 <= m["R@1"] <= m["R@100"] <= 1
    assert "swap sensitivity" in out  # issue 20: does the query use both inputs
    res = tmp_path / "eval.json"
    assert main(["eval", str(trained_run), "-q", "--results", str(res)]) == 0
    from tgir import results

    row = results.load(res)["rows"][0]
    assert row["metrics"]["R@1"]["per_seed"] == [pytest.approx(100 * m["R@1"])]
    capsys.readouterr()
    img = tiny_css2d / "images" / "test_000000.png"
    grid = tmp_path / "grid.png"
    assert main(["search", str(trained_run), "--image", str(img), "--text",
                 "add small red circle to top-left", "-k", "3", "--grid", str(grid), "-q"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and lines[0].split()[0] == "1" and grid.is_file()
    assert "test_000000" not in " ".join(lines[:3])  # the reference itself is excluded


def test_eval_protocol_overrides(trained_run, capsys):
    assert main(["eval", str(trained_run), "-q", "--set", "eval.gallery=queries",
                 "--set", "eval.keep_reference=true"]) == 0
    doc = json.loads((trained_run / "metrics.json").read_text())
    assert doc["protocol"] == {"gallery": "queries", "keep_reference": True}
    assert main(["eval", str(trained_run), "-q", "--set", "model.embed_dim=8"]) == 2
    assert "not 'model.embed_dim'" in capsys.readouterr().err
    assert main(["eval", str(trained_run), "-q", "--set", "eval.gallery=some"]) == 2
    assert main(["eval", str(trained_run), "-q"]) == 0  # back to the default protocol


def test_unknown_config_key(tiny_config, tmp_path, capsys):
    run = tmp_path / "r"
    assert main(["train", str(tiny_config), "--out", str(run), "--set", "train.stpes=3"]) == 2
    _one_line_error(capsys, "unknown config key train.stpes")
    assert not run.exists()


def test_missing_config_file(tmp_path, capsys):
    assert main(["train", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "r")]) == 2
    _one_line_error(capsys, "config file not found")


def test_run_without_checkpoint(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["eval", str(tmp_path / "empty")]) == 2
    _one_line_error(capsys, "no trained model")
    assert main(["train", "--resume", "--out", str(tmp_path / "empty")]) == 2
    _one_line_error(capsys, "config file not found")


@pytest.mark.parametrize("kind", ["missing", "corrupt", "empty_text"])
def test_bad_search_input_damages_nothing(trained_run, tmp_path, capsys, kind, tiny_css2d):
    img = tiny_css2d / "images" / "test_000001.png"
    text = "remove top-left small red circle"
    if kind == "missing":
        img = tmp_path / "nope.png"
    elif kind == "corrupt":
        img = tmp_path / "bad.png"
        img.write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    else:
        text = "   "
    before = _digest(trained_run)
    assert main(["search", str(trained_run), "--image", str(img), "--text", text, "-q"]) == 2
    _one_line_error(capsys, {"missing": "image not found", "corrupt": "corrupt",
                             "empty_text": "text is empty"}[kind])
    after = _digest(trained_run)
    assert {k: v for k, v in after.items() if k in before} == before


def test_retrain_into_finished_run_is_refused(trained_run, tiny_config, capsys):
    before = _digest(trained_run)
    assert main(["train", str(tiny_config), "--out", str(trained_run), "-q"]) == 2
    _one_line_error(capsys, "not empty")
    assert _digest(trained_run) == before


def test_search_by_item_with_words_and_index(trained_run, tiny_css2d, tmp_path, capsys):
    idx = tmp_path / "idx"
    assert main(["index", str(trained_run), "--catalog", str(tiny_css2d), "--out", str(idx),
                 "-q"]) == 0
    assert "indexed" in capsys.readouterr().out
    assert main(["search", str(trained_run), "--index", str(idx), "--item", "test_000003",
                 "--text", "make", "--plus", "red", "-k", "4", "-q",
                 "--grid", str(tmp_path / "g.png")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 5 and all("test_000003 " not in x for x in lines[:4])
    assert main(["search", str(trained_run), "--index", str(idx), "--item", "test_000003",
                 "--text", "make", "--minus", "red", "-q"]) == 2
    _one_line_error(capsys, "undesired words")
    assert main(["search", str(trained_run), "--index", str(idx), "--item", "nope",
                 "--text", "make red", "-q"]) == 2
    _one_line_error(capsys, "unknown item id")


def test_cli_refine_methods_are_the_models():
    from tgir.cli.search import REFINE_METHODS
    from tgir.models.joint_embedding import METHODS

    assert REFINE_METHODS == METHODS
