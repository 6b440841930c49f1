"""HTTP API (FastAPI TestClient): every endpoint, bad input -> 4xx JSON, never a 500."""

import io
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tgir.data import build
from tgir.engine.features import embed_images, embed_queries
from tgir.eval.evaluate import rank
from tgir.models.checkpoint import load_run
from tgir.search.index import build_index
from tgir.search.server import create_app

LIMIT = 200_000


@pytest.fixture(scope="module", params=["faiss", "milvus"])
def index_dir(request, tiny_run, tiny_css2d, tmp_path_factory):
    """Every API test runs on both backends: FAISS in-process and milvus-lite."""
    if request.param == "milvus":
        pytest.importorskip("milvus_lite")
    return build_index(tiny_run, tiny_css2d, tmp_path_factory.mktemp("ix") / "idx",
                       progress=False, backend=request.param)


@pytest.fixture(scope="module")
def client(index_dir, tiny_run):
    return TestClient(create_app(index_dir, tiny_run, max_upload_bytes=LIMIT),
                      raise_server_exceptions=False)


def _png(w=64, h=64, color=(255, 255, 255)):
    b = io.BytesIO()
    Image.new("RGB", (w, h), color).save(b, "PNG")
    return b.getvalue()


def test_health_items_and_images(client):
    h = client.get("/health").json()
    assert h["status"] == "ok" and h["items"] > 100 and h["model"] == "maaf"
    page = client.get("/items", params={"limit": 5}).json()
    assert page["total"] == h["items"] and len(page["items"]) == 5
    it = page["items"][0]
    assert client.get(f"/items/{it['id']}").json()["id"] == it["id"]
    img = client.get(it["image"])
    assert img.status_code == 200 and img.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(img.content)).size == (64, 64)
    shuffled = client.get("/items", params={"limit": 5, "shuffle": True, "seed": 1}).json()
    assert [x["id"] for x in shuffled["items"]] != [x["id"] for x in page["items"]]
    assert "<title>tgir search</title>" in client.get("/").text
    assert "/search" in client.get("/openapi.json").json()["paths"]


def test_search_by_item_upload_and_json(client, tiny_css2d):
    first = client.get("/items", params={"limit": 1}).json()["items"][0]["id"]
    r = client.post("/search", data={"item_id": first, "text": "add small red circle to "
                                     "top-left", "k": "5"})
    assert r.status_code == 200, r.text
    res = r.json()["results"]
    assert len(res) == 5 and first not in [x["id"] for x in res]
    assert [x["rank"] for x in res] == [1, 2, 3, 4, 5]
    up = (tiny_css2d / "images" / f"{first}.png").read_bytes()
    r2 = client.post("/search", data={"text": "add small red circle to top-left", "k": "5"},
                     files={"image": ("ref.png", up, "image/png")})
    assert [x["id"] for x in r2.json()["results"]] == [x["id"] for x in res]
    r3 = client.post("/search", json={"item_id": first, "text": "add small red circle to "
                                      "top-left", "k": 5, "keep_reference": True})
    assert r3.status_code == 200 and len(r3.json()["results"]) == 5
    r4 = client.post("/search", data={"item_id": first, "text": "make", "plus": "red circle"})
    assert r4.status_code == 200


BAD = {
    "non-image upload": dict(files={"image": ("x.png", b"hello, not an image", "image/png")},
                             data={"text": "make it red"}),
    "truncated image": dict(files={"image": ("x.png", _png(64, 64, (1, 2, 3))[:60],
                                             "image/png")}, data={"text": "make it red"}),
    "empty text": dict(data={"item_id": "test_000000", "text": "  "}),
    "10000-char text": dict(data={"item_id": "test_000000", "text": "red " * 2500}),
    "k = 0": dict(data={"item_id": "test_000000", "text": "red", "k": "0"}),
    "k > 1000": dict(data={"item_id": "test_000000", "text": "red", "k": "1001"}),
    "k not a number": dict(data={"item_id": "test_000000", "text": "red", "k": "ten"}),
    "unknown item id": dict(data={"item_id": "nope", "text": "red"}),
    "malformed JSON": dict(content=b'{"text": "red", ', headers={"content-type":
                                                                 "application/json"}),
    "JSON not an object": dict(json=[1, 2]),
    "both image and item": dict(files={"image": ("x.png", _png(), "image/png")},
                                data={"item_id": "test_000000", "text": "red"}),
    "minus words on a composed model": dict(data={"item_id": "test_000000", "text": "red",
                                                  "minus": "blue"}),
    "text-only query on a composed model": dict(data={"text": "red circle"}),
    "no content type": dict(content=b"text=red"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_a_4xx_with_a_message(client, case):
    r = client.post("/search", **BAD[case])
    assert 400 <= r.status_code < 500, (case, r.status_code, r.text)
    assert isinstance(r.json()["detail"], str) and r.json()["detail"]
    assert client.get("/health").status_code == 200  # still serving


def test_oversized_and_bomb_uploads(client):
    big = np.random.default_rng(0).integers(0, 255, (400, 400, 3), dtype=np.uint8)
    b = io.BytesIO()
    Image.fromarray(big).save(b, "PNG")
    assert len(b.getvalue()) > LIMIT
    r = client.post("/search", data={"text": "red"},
                    files={"image": ("big.png", b.getvalue(), "image/png")})
    assert r.status_code == 413 and "limit" in r.json()["detail"]
    bomb = _png(8000, 7000)  # 56 megapixels (over the one 50 MP limit), a few KB compressed
    assert len(bomb) < LIMIT
    r = client.post("/search", data={"text": "red"},
                    files={"image": ("bomb.png", bomb, "image/png")})
    assert r.status_code == 400 and "too large" in r.json()["detail"]


def test_unknown_items_and_no_path_traversal(client):
    assert client.get("/items/nope").status_code == 404
    assert client.get("/items/nope/image").status_code == 404
    for evil in ("..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "..", "test_000000.png"):
        r = client.get(f"/items/{evil}/image")
        assert r.status_code == 404, evil
    assert client.get("/items", params={"limit": 0}).status_code == 422


def test_api_top_k_equals_the_evaluator(client, tiny_run, tiny_css2d):
    """Same query, same top-10 through the HTTP API as through the evaluator's ranking."""
    _, vocab, model = load_run(tiny_run)
    test = build("css2d", tiny_css2d, "test")
    g = embed_images(model, test.images)
    for qi in (0, 7):
        src = int(test.query_source[qi])
        q = embed_queries(model, vocab, test.images[[src]], [test.query_text[qi]])
        top = rank(q, g, np.array([src]), 10)[0]
        r = client.post("/search", data={"item_id": test.image_ids[src],
                                         "text": test.query_text[qi], "k": "10"})
        api = [x["id"] for x in r.json()["results"]]
        assert api == [test.image_ids[i] for i in top], json.dumps(r.json())[:500]
