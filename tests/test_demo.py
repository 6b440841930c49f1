import json

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
    # a second run reuses the finished runs instead of training again
    assert main(args) == 0
    assert "reused" in capsys.readouterr().err
