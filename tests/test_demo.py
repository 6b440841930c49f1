import json

from tgir import results
from tgir.cli import main


def test_demo_smoke_prints_one_json_line(tmp_path, capsys):
    """The demo pipeline end to end on the tiny scale (a handful of steps per model)."""
    args = ["demo", "--scale", "tiny", "--workdir", str(tmp_path), "--models",
            "tirg,image_only", "--steps-scale", "0.01", "--no-serve", "-q"]
    assert main(args) == 0
    out = capsys.readouterr().out.strip().splitlines()
    line = json.loads(out[-1])
    assert set(line["css2d-tiny"]) == {"tirg", "image_only", "copy_source"}
    assert set(line["css2d-tiny"]["tirg"]) == {"R@1", "R@10", "R@50"}
    assert line["seconds"] > 0
    assert (tmp_path / "runs" / "tirg" / "metrics.json").is_file()
    stages = json.loads((tmp_path / "results.json").read_text())["stage_seconds"]
    assert {"generate", "load", "train tirg", "eval tirg", "index + search"} <= set(stages)
    # the results file (issue 18): one row per model, seeds and the paper's metric names
    doc = results.load(tmp_path / "results" / "css2d-tiny.json")
    assert [r["model"] for r in doc["rows"]] == ["TIRG", "image only", "copy source"]
    assert doc["command"].startswith("tgir demo --scale tiny") and doc["steps"] >= 1
    tirg = doc["rows"][0]["metrics"]["R@1"]
    assert abs(tirg["per_seed"][0] - 100 * line["css2d-tiny"]["tirg"]["R@1"]) < 0.01
    # a second run reuses the finished runs instead of training again
    assert main(args) == 0
    assert "reused" in capsys.readouterr().err


def test_demo_seeds_give_mean_and_std(tmp_path, capsys):
    out = tmp_path / "r.json"
    args = ["demo", "--scale", "tiny", "--workdir", str(tmp_path), "--models", "image_only",
            "--steps-scale", "0.01", "--no-serve", "-q", "--seeds", "0", "1",
            "--results", str(out)]
    assert main(args) == 0
    doc = results.load(out)
    row = doc["rows"][0]
    assert row["seeds"] == [0, 1] and len(row["metrics"]["R@1"]["per_seed"]) == 2
    assert (tmp_path / "runs" / "image_only-seed1" / "model.safetensors").is_file()
    assert main(["report", str(out)]) == 0
    assert "| image only |" in capsys.readouterr().out
