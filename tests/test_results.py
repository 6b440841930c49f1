"""Results files (issue 18): schema, `tgir report`, and every README table equals its file."""

import json
import re
import shlex
from pathlib import Path

import pytest

from tgir import TgirError, results
from tgir.cli import main

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"^<!-- (tgir report [^>]*?) -->$")
# a README table whose header names a retrieval metric is a results table
METRIC_HEADER = re.compile(r"\| *[^|]*(R@\d+|Rank-\d+|mAP|nDCG|\bMM\b)[^|]*\|")


def _doc(**kw):
    rows = [results.make_row("A", [0, 1], [{"R@1": 0.5}, {"R@1": 0.7}], {"R@1": "R@1"}),
            results.make_row("B", [0], [{"R@1": 0.9}], {"R@1": "R@1"},
                             columns={"training": "10 steps"})]
    return results.new("toy", "tgir demo", 10, rows, **kw)


def test_schema_keys_and_per_seed_statistics(tmp_path):
    doc = _doc()
    assert set(results.KEYS) <= set(doc)
    a = doc["rows"][0]["metrics"]["R@1"]
    assert a["per_seed"] == [50.0, 70.0] and a["mean"] == pytest.approx(60.0)
    assert a["std"] == pytest.approx(10.0)
    path = results.write(doc, tmp_path / "r.json")
    assert results.load(path) == json.loads(path.read_text())


def test_markdown_mean_std_bold_and_extra_columns():
    table = results.markdown(_doc())
    assert table.splitlines() == ["| model | R@1 | training |", "|---|---|---|",
                                  "| A | 60.0 ± 10.0 |  |", "| B | **90.0** | 10 steps |"]
    with pytest.raises(TgirError, match="no metric R@5"):
        results.markdown(_doc(), ["R@5"])


@pytest.mark.parametrize("edit,message", [
    (lambda d: d.pop("commit"), "missing key"),
    (lambda d: d.update(steps="ten"), "'steps' must be an integer"),
    (lambda d: d["rows"][0]["metrics"]["R@1"].update(mean=1.0), "do not match per_seed"),
    (lambda d: d["rows"][0].update(seeds=[0]), "2 per-seed values for 1 seeds"),
    (lambda d: d.update(rows=[]), "non-empty list"),
])
def test_bad_files_name_the_problem(tmp_path, edit, message):
    doc = _doc()
    edit(doc)
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(TgirError, match=message):
        results.load(p)


def test_report_cli(tmp_path, capsys):
    p = results.write(_doc(), tmp_path / "r.json")
    assert main(["report", str(p), "--source"]) == 0
    out = capsys.readouterr().out
    assert "| A | 60.0 ± 10.0 |  |" in out and "tgir demo (commit" in out
    (tmp_path / "broken.json").write_text("{")
    assert main(["report", str(tmp_path / "broken.json")]) == 2
    assert "not valid JSON" in capsys.readouterr().err


def test_paper_names_for_person_search():
    names = results.paper_names(["t2i R@1", "t2i mAP", "i2t R@5"])
    assert names == {"t2i R@1": "Rank-1", "t2i mAP": "mAP", "i2t R@5": "i2t Rank-5"}
    assert results.paper_names(["R@1", "mAP"]) == {"R@1": "R@1", "mAP": "mAP"}


def _readme_tables() -> list[tuple[int, str | None, list[str]]]:
    """(line, marker command or None, table lines) for every table in the README."""
    lines = (ROOT / "README.md").read_text().splitlines()
    out, i = [], 0
    while i < len(lines):
        if lines[i].startswith("|"):
            j = i
            while j < len(lines) and lines[j].startswith("|"):
                j += 1
            m = MARKER.match(lines[i - 1]) if i else None
            out.append((i + 1, m.group(1) if m else None, lines[i:j]))
            i = j
        else:
            i += 1
    return out


def test_every_readme_results_table_is_its_results_file(capsys):
    tables = _readme_tables()
    checked = 0
    for line, command, table in tables:
        if command is None:
            assert not METRIC_HEADER.search(table[0]), (
                f"README line {line}: a results table without a '<!-- tgir report "
                f"results/X.json -->' line above it: {table[0]}")
            continue
        argv = shlex.split(command)[1:]
        files = [a for a in argv if a.endswith(".json")]
        assert files and all((ROOT / f).is_file() for f in files), f"README line {line}"
        argv = [str(ROOT / a) if a.endswith(".json") else a for a in argv]
        assert main(argv) == 0
        expected = capsys.readouterr().out.strip().splitlines()
        assert table == expected, (f"README line {line} differs from `{command}`; paste its "
                                   f"output:\n" + "\n".join(expected))
        checked += 1
    assert checked >= 10


def test_every_committed_results_file_is_valid_and_named():
    files = sorted((ROOT / "results").glob("*.json"))
    assert files
    readme = (ROOT / "README.md").read_text()
    for f in files:
        results.load(f)
        assert f"results/{f.name}" in readme, f"{f.name} is not shown in the README"
