"""Code-shape rules of the developers' guide and issue 25: short functions, and data ->
models -> engine -> eval -> search -> cli imports flowing one way."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "tgir"
LAYERS = ["data", "models", "engine", "eval", "search"]  # each may import only earlier ones


def _modules():
    for p in sorted(SRC.rglob("*.py")):
        yield p, ast.parse(p.read_text())


def test_no_function_over_80_lines():
    long = [f"{p.relative_to(SRC)}:{n.lineno} {n.name} ({n.end_lineno - n.lineno + 1} lines)"
            for p, tree in _modules() for n in ast.walk(tree)
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
            and n.end_lineno - n.lineno + 1 > 80]
    assert not long, long


def test_layers_import_one_way():
    wrong = []
    for p, tree in _modules():
        rel = p.relative_to(SRC).parts
        if rel[0] not in LAYERS:
            continue
        mine = LAYERS.index(rel[0])
        for n in ast.walk(tree):
            names = ([a.name for a in n.names] if isinstance(n, ast.Import)
                     else [n.module or ""] if isinstance(n, ast.ImportFrom) and not n.level
                     else [])
            for name in names:
                parts = name.split(".")
                if parts[0] == "tgir" and len(parts) > 1 and parts[1] in LAYERS \
                        and LAYERS.index(parts[1]) > mine:
                    wrong.append(f"{'/'.join(rel)} imports {name}")
    assert not wrong, wrong


def test_generated_sources_are_registered_once(tmp_path):
    """data/sources.py: every generated dataset is recognised by its annotation file, and the
    catalog knows the items of each."""
    from tgir.data.catalog import SOURCE_ITEMS
    from tgir.data.sources import SOURCES, source_at, source_of

    assert set(SOURCE_ITEMS) == set(SOURCES)
    assert source_of("emoji_attr").name == "emoji" and source_of("people2d_attr").scaled
    assert source_at(tmp_path) is None
    (tmp_path / "clipart.json").write_text("{}")
    assert source_at(tmp_path).name == "clipart"
