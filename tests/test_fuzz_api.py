"""Fuzz the HTTP API from its own OpenAPI schema (schemathesis strategies): no 5xx, ever."""

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402

from tgir.search.index import build_index  # noqa: E402
from tgir.search.server import create_app  # noqa: E402


@pytest.fixture(scope="module")
def fuzz_app(tiny_run, tiny_css2d, tmp_path_factory):
    idx = build_index(tiny_run, tiny_css2d, tmp_path_factory.mktemp("fz") / "idx",
                      progress=False)
    return create_app(idx, tiny_run, max_upload_bytes=100_000)


def test_no_server_errors(fuzz_app, reliability):
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)
    ops = [r.ok() for r in schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in ops} >= {
        "POST /search", "GET /items/{item_id}", "GET /items/{item_id}/image", "GET /health"}
    seen: list[tuple] = []
    def check(case):
        response = case.call()
        reliability["inputs tried"] += 1
        if response.status_code >= 500:
            reliability["5xx seen"] += 1
        seen.append((case.path, response.status_code))
        assert response.status_code < 500, (case.path, case, response.text[:300])

    for op in ops:
        run = settings(max_examples=40, deadline=None, database=None,
                       suppress_health_check=list(HealthCheck))(
            given(case=op.as_strategy())(check))
        run()
    assert len(seen) > 50
