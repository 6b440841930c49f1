"""HTTP API and web page over an index (FastAPI).

``POST /search`` (multipart: ``image`` upload or ``item_id``, ``text``, ``k``, ``plus``,
``minus``, ``keep_reference``, ``attributes``; or the same fields as a JSON object),
``GET /schema`` (an attribute model's attributes and values), ``GET /items`` (browse /
random), ``GET /items/{id}``, ``GET /items/{id}/image`` (files come from the index's own
catalog, looked up by id: no path from a request reaches the file system), ``GET /health``,
and the page at ``/``. Every bad input is a 4xx with ``{"detail": "..."}``.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from pydantic import ValidationError

from tgir import TgirError
from tgir.models.joint_embedding import METHODS
from tgir.search.query import SearchRequest, SearchResponse, parse_query, validation_message
from tgir.search.searcher import Searcher

WEB = Path(__file__).parent / "web"


def _image_url(item_id: str) -> str:
    from urllib.parse import quote

    return f"/items/{quote(item_id, safe='')}/image"


async def read_search_body(request: Request, max_upload_bytes: int
                           ) -> tuple[dict, bytes | None, str | None]:
    """A search request's fields and reference upload, from JSON or a (multipart) form:
    (fields, image bytes or None, the upload's name for messages). Oversized bodies are a
    413, malformed ones a 400, other content types a 415."""
    ctype = request.headers.get("content-type", "")
    image: bytes | None = None
    image_name: str | None = None
    if ctype.startswith("application/json"):
        body = await request.body()
        if len(body) > max_upload_bytes:
            raise HTTPException(413, "request body too large")
        try:
            data = json.loads(body or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise HTTPException(400, f"malformed JSON: {e}") from e
        if not isinstance(data, dict):
            raise HTTPException(400, "the JSON body must be an object")
    elif ctype.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        try:
            form = await request.form(max_part_size=max_upload_bytes + 1)
        except Exception as e:  # noqa: BLE001 - the multipart parser's own errors
            raise HTTPException(400, f"malformed form data: {e}") from e
        data = {k: v for k, v in form.items() if not hasattr(v, "read")}
        upload = form.get("image")
        if upload is not None and hasattr(upload, "read"):
            image_name = f"the uploaded image {upload.filename!r}" if getattr(
                upload, "filename", None) else "the uploaded image"
            image = await upload.read(max_upload_bytes + 1)
            if len(image) > max_upload_bytes:
                raise HTTPException(413, f"{image_name} is over the {max_upload_bytes} "
                                         f"byte limit")
            if not image:
                if getattr(upload, "filename", None):  # a file was chosen, and it is empty
                    raise HTTPException(400, f"{image_name} is empty (0 bytes)")
                image = None  # the browser's empty file field: no reference
    else:
        raise HTTPException(415, "send multipart/form-data or application/json")
    return data, image, image_name


def _add_error_handlers(app: FastAPI) -> None:
    """TgirError -> 400 (404 for an unknown item id); anything else -> a logged 500."""

    @app.exception_handler(TgirError)
    async def _tgir_error(request: Request, exc: TgirError):
        status = 404 if str(exc).startswith("unknown item id") else 400
        return JSONResponse({"detail": str(exc)}, status_code=status)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        import logging

        logging.getLogger("tgir.server").exception("unexpected error on %s", request.url.path)
        return JSONResponse({"detail": "internal error"}, status_code=500)


def _add_item_routes(app: FastAPI, idx) -> None:
    """GET /items (paged, optionally shuffled), /items/{id} and /items/{id}/image."""

    def item_json(row: int) -> dict:
        it = idx.items[row]
        return {"id": it["id"], "text": it.get("text", ""), "meta": it.get("meta", {}),
                "image": _image_url(it["id"])}

    @app.get("/items")
    def items(offset: int = 0, limit: int = 24, shuffle: bool = False,
              seed: int | None = None) -> dict:
        if not 1 <= limit <= 200 or offset < 0:
            raise HTTPException(422, "limit must be 1..200 and offset >= 0")
        rows = list(range(len(idx.items)))
        if shuffle:
            random.Random(seed).shuffle(rows)
        return {"total": len(rows), "items": [item_json(r) for r in rows[offset:offset + limit]]}

    @app.get("/items/{item_id}")
    def item(item_id: str) -> dict:
        if item_id not in idx.row_of:
            raise HTTPException(404, f"unknown item id {item_id!r}")
        return item_json(idx.row_of[item_id])

    @app.get("/items/{item_id}/image")
    def item_image(item_id: str):
        try:
            return FileResponse(idx.image_path(item_id))
        except KeyError:
            raise HTTPException(404, f"unknown item id {item_id!r}") from None


def create_app(index_dir: str | Path, run_dir: str | Path | None = None,
               max_upload_bytes: int = 10 * 1024 * 1024, device: str = "auto") -> FastAPI:
    from tgir.search.index import Index

    index_dir = Path(index_dir)
    run = run_dir or Index(index_dir).manifest["model"]["run_dir"]
    searcher = Searcher(run, index_dir, device=device, progress=False, batch_requests=True)
    idx = searcher.index
    app = FastAPI(title="tgir search", version="1",
                  description="Text-guided image retrieval over one catalog index.")
    app.state.searcher = searcher
    _add_error_handlers(app)

    @app.get("/health")
    def health() -> dict:
        m = idx.manifest
        return {"status": "ok", "items": m["count"], "model": m["model"]["name"],
                "kind": m["kind"], "dim": m["model"]["dim"],
                "task": searcher.caps.task,
                "query_kinds": list(searcher.kinds),
                "refine_methods": list(METHODS) if searcher.caps.refine else [],
                "undesired_words": searcher.caps.refine}

    @app.get("/schema")
    def schema() -> dict:
        """The attributes an attribute model answers, with their valid values (else null)."""
        return {"attributes": searcher.attribute_schema}

    _add_item_routes(app, idx)

    # the request schema is SearchRequest's own; multipart adds the image upload
    fields = SearchRequest.model_json_schema()
    form = {**fields, "properties": {**fields["properties"], "image": {
        "type": "string", "format": "binary", "description": "reference image upload"}}}
    search_body = {"requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": form},
        "application/json": {"schema": fields},
    }}}

    @app.post("/search", openapi_extra=search_body, response_model=SearchResponse,
              summary="Search: a reference (upload or item id) + text, a text, or attributes")
    async def search(request: Request) -> dict:
        data, image, image_name = await read_search_body(request, max_upload_bytes)
        try:  # request validation: a 422 naming the field, as FastAPI's own
            req = SearchRequest.model_validate(data)
        except ValidationError as e:
            raise HTTPException(422, validation_message(e)) from e
        q, k = parse_query(req, image, image_name)
        hits = searcher.search(q, k)
        return {"query": {"text": q.text, "item_id": q.item_id, "plus": q.plus,
                          "minus": q.minus, "uploaded": image is not None, "k": k,
                          "method": q.method,
                          "attributes": (searcher.complete_attributes(q.attributes)
                                         if q.attributes else None)},
                "notes": list(searcher.notes),
                "results": [{**asdict(h), "image": _image_url(h.id)} for h in hits]}

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return (WEB / "index.html").read_text()

    return app


def serve(index_dir: str | Path, run_dir: str | Path | None = None, host: str = "127.0.0.1",
          port: int = 8000, max_upload_mb: float = 10.0) -> None:
    import uvicorn

    app = create_app(index_dir, run_dir, max_upload_bytes=int(max_upload_mb * 1024 * 1024))
    print(f"tgir: serving {index_dir} at http://{host}:{port}/  (Ctrl-C stops)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
