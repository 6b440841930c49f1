"""The persistent index: build / load / add, atomic writes, manifest checks."""

import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from tgir import TgirError, config
from tgir.engine.train import train
from tgir.search.index import Index, add_to_index, build_index
from tgir.search.searcher import Query, Searcher

from .conftest import tiny_train_config


def test_build_load_search_round_trip(tiny_run, tiny_css2d, tmp_path):
    out = build_index(tiny_run, tiny_css2d, tmp_path / "idx", progress=False)
    idx = Index(out)
    m = idx.manifest
    assert m["count"] == len(idx.items) == idx.faiss.ntotal > 100
    assert m["kind"] == "flat" and m["model"]["dim"] == 32 and len(m["model"]["sha256"]) == 64
    assert {"created", "updated", "metric", "catalog"} <= set(m)
    scores, rows = idx.search(np.random.default_rng(0).normal(size=(2, 32)), 5)
    assert rows.shape == (2, 5) and np.all(np.diff(scores, axis=1) <= 1e-6)


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_kinds_record_their_parameters(tiny_run, tiny_css2d, tmp_path, kind):
    out = build_index(tiny_run, tiny_css2d, tmp_path / kind, kind=kind, progress=False)
    m = Index(out).manifest
    assert m["kind"] == kind and m["params"]
    s = Searcher(tiny_run, out, progress=False)
    assert len(s.search(Query(text="remove top-left small red circle",
                              item_id=s.index.items[0]["id"]), 5)) == 5


def _folder(tmp_path, n, start=0):
    d = tmp_path / "folder"
    d.mkdir(exist_ok=True)
    rng = np.random.default_rng(start)
    for i in range(start, start + n):
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(d / f"p{i}.png")
    return d


def test_incremental_add_keeps_existing_rows(tiny_run, tmp_path):
    cat = _folder(tmp_path, 6)
    out = build_index(tiny_run, cat, tmp_path / "idx", progress=False)
    before = Index(out)
    v0 = before.faiss.reconstruct_n(0, 6)
    _folder(tmp_path, 4, start=6)
    assert add_to_index(tiny_run, out, progress=False) == 4
    after = Index(out)
    assert after.manifest["count"] == 10 and [it["id"] for it in after.items[:6]] == \
        [it["id"] for it in before.items]
    assert np.allclose(after.faiss.reconstruct_n(0, 6), v0)
    assert add_to_index(tiny_run, out, progress=False) == 0  # nothing new


KILLER = textwrap.dedent("""
    import os, signal, sys
    import tgir.search.index as ix
    where = sys.argv[4]
    if where == "embed":
        real = ix.embed_catalog
        def embed(model, root, items, **kw):
            real(model, root, items[:8], **kw)
            os.kill(os.getpid(), signal.SIGKILL)
        ix.embed_catalog = embed
    else:
        real = ix.faiss.write_index
        def write(index, path):
            real(index, path)
            os.kill(os.getpid(), signal.SIGKILL)
        ix.faiss.write_index = write
    ix.build_index(sys.argv[1], sys.argv[2], sys.argv[3], progress=False)
""")


@pytest.mark.parametrize("where", ["embed", "write"])
def test_killed_writer_leaves_the_old_index(tiny_run, tiny_css2d, tmp_path, where):
    out = build_index(tiny_run, _folder(tmp_path, 5), tmp_path / "idx", progress=False)
    before = (out / "items.jsonl").read_text()
    r = subprocess.run([sys.executable, "-c", KILLER, str(tiny_run), str(tiny_css2d), str(out),
                        where], capture_output=True, timeout=300)
    assert r.returncode == -9, r.stderr.decode()[-2000:]
    idx = Index(out)  # still loads, still the old one
    assert (out / "items.jsonl").read_text() == before and idx.manifest["count"] == 5


def test_manifest_mismatch_is_refused(tiny_run, tiny_css2d, tmp_path):
    out = build_index(tiny_run, _folder(tmp_path, 3), tmp_path / "idx", progress=False)
    other = tmp_path / "other"
    train(config.from_dict(tiny_train_config(tiny_css2d, steps=3)), other, progress=False)
    with pytest.raises(TgirError, match="built with another model"):
        Searcher(other, out, progress=False)
    wide = tmp_path / "wide"
    train(config.from_dict(tiny_train_config(tiny_css2d, embed_dim=48, steps=2)), wide,
          progress=False)
    with pytest.raises(TgirError, match="holds 32-d vectors"):
        Searcher(wide, out, progress=False)


def test_corrupt_or_missing_index(tmp_path, tiny_run):
    with pytest.raises(TgirError, match="no index"):
        Searcher(tiny_run, tmp_path / "nothing", progress=False)
    out = build_index(tiny_run, _folder(tmp_path, 3), tmp_path / "idx", progress=False)
    (out / "items.jsonl").write_text('{"id": "p0", "file": "p0.png"}\n')
    with pytest.raises(TgirError, match="inconsistent"):
        Index(out)
    shutil.rmtree(out)


def test_size_chosen_kinds_and_report(tiny_run, tiny_css2d, tmp_path):
    from tgir.search.index import choose_kind, default_params

    assert [choose_kind(n, 512) for n in (1_000, 500_000, 5_000_000, 50_000_000)] == \
        ["flat", "flat16", "hnsw", "ivf16"]
    p = default_params("ivf", 1_000_000)
    assert p["nlist"] == 4000 and p["nprobe"] == 250
    out = build_index(tiny_run, tiny_css2d, tmp_path / "a", kind="auto", report=True,
                      progress=False)
    m = Index(out).manifest
    assert m["kind"] == "flat" and m["report"]["recall@10"] == 1.0
    assert m["report"]["memory_bytes"] > 0 and m["report"]["build_seconds"] >= 0
    # fp16 codes: half the memory, (nearly) exact on well-spread vectors
    from tgir.search.index import index_report, make_faiss

    v = np.random.default_rng(0).standard_normal((5000, 64)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    index, _ = make_faiss("flat16", 64, v, {})
    index.add(v)
    r = index_report(index, v, 0.0)
    assert r["memory_bytes"] < 0.55 * r["float32_bytes"] and r["recall@10"] > 0.98
    ivf, used = make_faiss("ivf", 64, v, {})
    ivf.add(v)
    assert used == {"nlist": 128, "nprobe": 8} and 0.3 < index_report(ivf, v, 0.0)[
        "recall@10"] < 1.0


def test_torchrun_sharded_index_equals_the_unsharded_one(tiny_run, tiny_css2d, tmp_path):
    import os

    from .test_distributed import _free_port

    one = build_index(tiny_run, tiny_css2d, tmp_path / "one", progress=False)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                        "--master_port", str(_free_port()), "-m", "tgir", "index",
                        str(tiny_run), "--catalog", str(tiny_css2d), "--out",
                        str(tmp_path / "two"), "-q"], capture_output=True, text=True,
                       env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    a, b = Index(one), Index(tmp_path / "two")
    assert b.manifest["processes"] == 2 and a.items == b.items
    assert np.allclose(a.vectors(), b.vectors(), atol=1e-5)
    assert not (tmp_path / ".two.shards").exists()
    assert r.stdout.count("indexed") == 1  # rank 0 reports


def _messy_folder(tmp_path):
    """A user's folder: good images in several formats and nested folders, plus the usual
    bad files (corrupt, truncated, empty, a text file with an image suffix)."""
    from PIL import Image

    d = tmp_path / "photos"
    (d / "nested" / "deeper").mkdir(parents=True)
    Image.new("RGB", (40, 30), (200, 10, 10)).save(d / "cat.png")
    Image.new("RGB", (40, 30), (10, 200, 10)).save(d / "cat.jpg")
    Image.new("P", (20, 20), 3).save(d / "anim.gif")
    Image.new("L", (20, 20), 90).save(d / "nested" / "grey.tiff")
    Image.new("RGBA", (20, 20), (0, 0, 255, 128)).save(d / "nested" / "deeper" / "überall.png")
    (d / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 50)
    good = (d / "cat.png").read_bytes()
    (d / "truncated.png").write_bytes(good[: len(good) // 2])
    (d / "empty.jpg").write_bytes(b"")
    (d / "notes.png").write_text("not an image")
    (d / "readme.txt").write_text("ignored: not an image suffix")
    return d


def test_index_skips_bad_files_and_reports_them(tiny_run, tmp_path, capsys):
    from tgir.cli import main

    d = _messy_folder(tmp_path)
    out = tmp_path / "idx"
    assert main(["index", str(tiny_run), "--catalog", str(d), "--out", str(out), "-q"]) == 0
    err = capsys.readouterr().err
    assert "skipped 4 image(s)" in err and "1 empty: empty.jpg" in err
    for name in ("corrupt.png", "truncated.png", "notes.png"):
        assert name in err
    idx = Index(out)
    ids = sorted(it["id"] for it in idx.items)
    assert ids == ["anim", "cat.jpg", "cat.png", "nested__deeper__überall", "nested__grey"]
    assert len(idx.manifest["skipped"]) == 4
    # --strict keeps the old behaviour: the first bad file stops it, nothing is written
    assert main(["index", str(tiny_run), "--catalog", str(d), "--out",
                 str(tmp_path / "strict"), "--strict", "-q"]) == 2
    assert not (tmp_path / "strict").exists()


def test_add_drops_deleted_files(tiny_run, tmp_path, capsys):
    from tgir.cli import main

    d = _messy_folder(tmp_path)
    out = tmp_path / "idx"
    assert main(["index", str(tiny_run), "--catalog", str(d), "--out", str(out), "-q"]) == 0
    v_before = {it["id"]: v for it, v in zip(Index(out).items, Index(out).vectors(),
                                              strict=True)}
    (d / "cat.jpg").unlink()
    (d / "anim.gif").unlink()
    from PIL import Image

    Image.new("RGB", (30, 30), (1, 2, 3)).save(d / "new.png")
    assert main(["index", str(tiny_run), "--catalog", str(d), "--out", str(out), "--add",
                 "-q"]) == 0
    out_text = capsys.readouterr().out
    assert "added 1 items" in out_text and "dropped 2" in out_text
    idx = Index(out)
    ids = [it["id"] for it in idx.items]
    assert "cat.jpg" not in ids and "anim" not in ids and "new" in ids
    for it, v in zip(idx.items, idx.vectors(), strict=True):  # kept rows keep their vectors
        if it["id"] in v_before:
            assert np.allclose(v, v_before[it["id"]])


def test_auto_picks_the_fastest_index_meeting_the_recall_target():
    """Issue 26: --kind auto measures recall@10 on held-out catalog vectors at build time."""
    from tgir.search.index import auto_select

    rng = np.random.default_rng(0)
    c = rng.standard_normal((100, 64)).astype(np.float32)
    v = c[rng.integers(0, 100, 30_000)] + 0.5 * rng.standard_normal((30_000, 64)).astype(
        np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    kind, params, sweep = auto_select(v, recall_target=0.9)
    assert sweep["chosen"]["recall"] >= 0.9 and sweep["held_out_queries"] == 256
    chosen = next(r for r in sweep["candidates"] if r["kind"] == kind
                  and r["params"] == params)
    ok = [r for r in sweep["candidates"] if r["recall"] >= 0.9]
    assert chosen["qps"] == max(r["qps"] for r in ok)
    assert {r["kind"] for r in sweep["candidates"]} == {"flat", "hnsw", "ivf"}
    # an impossible target falls back to exact search
    assert auto_select(v, recall_target=1.01)[0] == "flat"
    assert auto_select(v[:1000])[0] == "flat"  # small catalogs stay exact
