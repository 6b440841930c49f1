"""The Milvus backend (pymilvus + embedded milvus-lite): the same top-k as FAISS flat through
the Searcher and the HTTP API, incremental adds, and a clear error for a bad URI."""

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tgir import TgirError
from tgir.search.index import Index, add_to_index, build_index
from tgir.search.searcher import Query, Searcher
from tgir.search.server import create_app

from .test_index import _folder

pytest.importorskip("milvus_lite")


@pytest.fixture(scope="module")
def both(tiny_run, tiny_css2d, tmp_path_factory):
    d = tmp_path_factory.mktemp("mv")
    return (build_index(tiny_run, tiny_css2d, d / "faiss", progress=False),
            build_index(tiny_run, tiny_css2d, d / "milvus", progress=False, backend="milvus"))


def test_milvus_lite_gives_the_faiss_flat_top_k(tiny_run, both):
    f, m = Searcher(tiny_run, both[0], progress=False), Searcher(tiny_run, both[1], progress=False)
    assert m.index.manifest["store"] == {"backend": "milvus", "uri": "milvus.db",
                                         "collection": "items", "kind": "flat", "params": {}}
    assert (both[1] / "milvus.db").is_dir() and not (both[1] / "index.faiss").exists()
    assert np.allclose(f.index.vectors(), m.index.vectors(), atol=1e-6)
    for i, text in enumerate(["add small red circle to top-left", "remove big blue square",
                              "make the middle triangle green"]):
        q = Query(text=text, item_id=f.index.items[7 * i]["id"])
        a, b = f.search(q, 10), m.search(q, 10)
        assert [h.id for h in a] == [h.id for h in b]
        assert np.allclose([h.score for h in a], [h.score for h in b], atol=1e-5)
    m.index.close()


def test_http_api_on_milvus_matches_faiss(tiny_run, both):
    ca = TestClient(create_app(both[0], tiny_run), raise_server_exceptions=False)
    cb = TestClient(create_app(both[1], tiny_run), raise_server_exceptions=False)
    item = ca.get("/items", params={"limit": 1}).json()["items"][0]["id"]
    form = {"item_id": item, "text": "add small red circle to top-left", "k": "8"}
    ra, rb = ca.post("/search", data=form).json(), cb.post("/search", data=form).json()
    assert [r["id"] for r in ra["results"]] == [r["id"] for r in rb["results"]]
    assert cb.get("/health").json()["items"] == ca.get("/health").json()["items"]


def test_milvus_lite_incremental_add(tiny_run, tmp_path):
    cat = _folder(tmp_path, 6)
    out = build_index(tiny_run, cat, tmp_path / "idx", progress=False, backend="milvus")
    before = Index(out)
    v0 = before.vectors()
    before.close()
    _folder(tmp_path, 4, start=6)
    assert add_to_index(tiny_run, out, progress=False) == 4
    after = Index(out)
    assert after.manifest["count"] == after.store.ntotal == 10
    assert np.allclose(after.vectors()[:6], v0)
    after.close()


def test_bad_milvus_uri_is_a_clear_error(tiny_run, tmp_path):
    with pytest.raises(TgirError, match="--uri is for --backend milvus"):
        build_index(tiny_run, _folder(tmp_path, 2), tmp_path / "x", uri="http://h:1")
    with pytest.raises(TgirError, match="cannot open Milvus at http://127.0.0.1:9"):
        build_index(tiny_run, _folder(tmp_path, 2), tmp_path / "y", backend="milvus",
                    uri="http://127.0.0.1:9")
    assert not (tmp_path / "y").exists()


def test_external_milvus_uri_keeps_the_store_outside_and_drops_replaced_collections(
        tiny_run, tmp_path):
    """A Milvus URI outside the index directory (a server in production; an external
    milvus-lite file here) is recorded as is; a rebuild drops the collection it replaced."""
    from pymilvus import MilvusClient

    from tgir.search.backends import drop_collection

    ext = str(tmp_path / "server.db")
    cat = _folder(tmp_path, 5)
    out = build_index(tiny_run, cat, tmp_path / "idx", progress=False, backend="milvus",
                      uri=ext)
    first = Index(out)
    entry = first.manifest["store"]
    assert entry["uri"] == ext and entry["collection"].startswith("tgir_")
    assert not (out / "milvus.db").exists() and first.store.ntotal == 5
    first.close()
    build_index(tiny_run, cat, out, progress=False, backend="milvus", uri=ext)
    second = Index(out).manifest["store"]["collection"]
    c = MilvusClient(ext)
    names = c.list_collections()
    c.close()
    drop_collection(ext, "none")  # releases the embedded server of this path
    assert second in names and entry["collection"] not in names
