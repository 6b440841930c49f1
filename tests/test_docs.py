"""docs/ARCHITECTURE.md's worked examples run as written: adding a model (its file and its
registry line) and reading a dataset through the registry."""

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "ARCHITECTURE.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def test_adding_a_model_is_one_file_and_one_registry_line(tiny_css2d, tmp_path, monkeypatch,
                                                         capsys):
    from tgir.models import registry

    model_file, train_example, _ = _blocks()
    ns: dict = {}
    exec(compile(model_file, "models/sum_fusion.py", "exec"), ns)
    monkeypatch.setitem(registry._MODELS, "sum_fusion", ns["SumFusion"])  # the registry line
    exec(compile(train_example, "example", "exec"),
         {"CSS2D_ROOT": str(tiny_css2d), "RUN_DIR": tmp_path / "run"})
    r1 = float(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0.0 <= r1 <= 1.0
    assert (tmp_path / "run" / "metrics.json").is_file()


def test_adding_a_dataset_folder_example(tmp_path, capsys):
    *_, dataset_example = _blocks()
    exec(compile(dataset_example, "example", "exec"), {"FOLDER": tmp_path})
    assert capsys.readouterr().out.split() == ["composed", "2", "(3,", "32,", "32,", "3)"]
