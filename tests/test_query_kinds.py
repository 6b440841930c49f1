"""Every model kind answers every query kind: its own with results, the others with a 4xx
naming the kinds it serves, never a 500 (issue 19). Also fuzzes the API over each kind."""

import json

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tgir import config
from tgir.engine.train import train
from tgir.search.index import build_index
from tgir.search.server import create_app

from .test_aihm import TOY_SCHEMA, _toy_config, toy_split
from .test_hgan import tiny_hgan_run, toy_text_split
from .test_joint_embedding import toy_catalog

KINDS = {"composed": {"item_id": None, "text": "add small red circle to top-left"},
         "text": {"text": "a red circle"},
         "attributes": {"attributes": {"color": "red", "place": "top-left", "size": "large"}}}


def _folder(tmp, images, texts=None, attrs=None):
    d = tmp / "catalog"
    d.mkdir()
    lines = []
    for i, im in enumerate(images[:24]):
        Image.fromarray(im).save(d / f"{i:03d}.png")
        row = {"file": f"{i:03d}.png", "id": f"i{i:03d}", "text": texts[i] if texts else ""}
        if attrs is not None:
            row["attributes"] = attrs[i]
        lines.append(json.dumps(row))
    (d / "catalog.jsonl").write_text("\n".join(lines))
    return d


@pytest.fixture(scope="module", params=["maaf", "attr_classifier", "hgan", "joint"])
def app(request, tiny_run, tiny_css2d, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(request.param)
    if request.param == "maaf":
        return request.param, create_app(build_index(tiny_run, tiny_css2d, tmp / "idx",
                                                     progress=False), tiny_run)
    run = tmp / "run"
    if request.param == "attr_classifier":
        data = toy_split()
        train(_toy_config("attr_classifier", 2), run, progress=False, data=data)
        attrs = [{a: TOY_SCHEMA[a][data.attributes[i, j]] for j, a in enumerate(TOY_SCHEMA)}
                 for i in range(24)]
        cat = _folder(tmp, data.images, attrs=attrs)
    elif request.param == "hgan":
        data = toy_text_split(24)
        tiny_hgan_run(run, data)
        cat = _folder(tmp, data.images, texts=list(data.captions))
    else:
        data = toy_catalog(48)
        train(config.from_dict({
            "data": {"name": "toy", "root": ".", "val_fraction": 0.2},
            "model": {"name": "joint", "embed_dim": 32},
            "train": {"steps": 2, "batch_size": 16, "log_every": 1}}), run, progress=False,
            data=data)
        cat = _folder(tmp, data.images, texts=[" ".join(w) for w in data.words])
    return request.param, create_app(build_index(run, cat, tmp / "idx", progress=False), run)


SERVES = {"maaf": {"composed"}, "attr_classifier": {"attributes"}, "hgan": {"text"},
          "joint": {"composed", "text"}}


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_query_kind_is_answered_or_refused_by_name(app, kind):
    name, a = app
    client = TestClient(a, raise_server_exceptions=False)
    health = client.get("/health").json()
    assert set(health["query_kinds"]) == SERVES[name]
    body = dict(KINDS[kind])
    if "item_id" in body:
        body["item_id"] = client.get("/items").json()["items"][0]["id"]
    if name == "joint" and kind != "attributes":
        body["text"] = "red"  # a vocabulary word of the toy catalog
    r = client.post("/search", json=body)
    if kind in SERVES[name]:
        assert r.status_code == 200, r.text
        assert r.json()["results"] and "notes" in r.json()
    else:
        assert r.status_code == 400, r.text
        detail = r.json()["detail"]
        assert "does not answer" in detail and "it answers" in detail, detail


def test_no_server_errors_on_any_model_kind(app):
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings

    name, a = app
    schema = schemathesis.openapi.from_asgi("/openapi.json", a)
    for op in [r.ok() for r in schema.get_all_operations()]:
        if op.path != "/search":
            continue

        def check(case):
            response = case.call()
            assert response.status_code < 500, (name, case, response.text[:300])

        settings(max_examples=30, deadline=None, database=None,
                 suppress_health_check=list(HealthCheck))(given(case=op.as_strategy())(check))()


def test_joint_model_reads_ordinary_sentences(app):
    """'a red square': stop words and verbs go as in the catalog's own vocabulary step; only a
    remaining unknown word is an error, and the message names the user's word."""
    name, a = app
    if name != "joint":
        pytest.skip("joint embedding only")
    client = TestClient(a, raise_server_exceptions=False)
    r = client.post("/search", json={"text": "show me a red square"})
    assert r.status_code == 200, r.text
    r = client.post("/search", json={"text": "a purple square"})
    assert r.status_code == 400 and "'purple' in 'a purple square'" in r.json()["detail"]
    r = client.post("/search", json={"attributes": {"color": "red"}})
    assert r.status_code == 400 and "does not answer attribute queries" in r.json()["detail"]


def test_upload_messages_name_the_users_file(app):
    name, a = app
    if name != "maaf":
        pytest.skip("one model is enough")
    client = TestClient(a, raise_server_exceptions=False)
    r = client.post("/search", files={"image": ("holiday.png", b"", "image/png")},
                    data={"text": "add red circle"})
    assert r.status_code == 400 and "'holiday.png' is empty" in r.json()["detail"]
    r = client.post("/search", files={"image": ("scan.jpg", b"not an image", "image/jpeg")},
                    data={"text": "add red circle"})
    detail = r.json()["detail"]
    assert r.status_code == 400 and "scan.jpg" in detail
    assert "BytesIO" not in detail and "<bytes>" not in detail
