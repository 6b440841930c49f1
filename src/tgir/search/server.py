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

from tgir import TgirError
from tgir.search.searcher import Query, Searcher

WEB = Path(__file__).parent / "web"


def _words(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [w for w in str(value).replace(",", " ").split() if w]


def _attributes(value) -> dict[str, str] | None:
    """An attribute set: a JSON object {attribute: value}, or (form field) the same object as
    a JSON string or ``attribute=value`` pairs separated by ``;`` / ``,``."""
    if value is None or value == "" or value == {}:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{"):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as e:
                raise HTTPException(422, f"attributes is not a JSON object: {e}") from e
        else:
            pairs = [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]
            if not all("=" in p for p in pairs):
                raise HTTPException(422, "attributes must be attribute=value pairs, e.g. "
                                         "gender=woman; skin=dark")
            value = dict(tuple(x.strip() for x in p.split("=", 1)) for p in pairs)
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise HTTPException(422, "attributes must map attribute names to string values")
    return value


def _method(value) -> str | None:
    if value is None or value == "":
        return None
    if value not in ("qa+saf", "qa", "saf", "filter"):
        raise HTTPException(422, "method must be one of qa+saf, qa, saf, filter")
    return value


def _int(value, name: str, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError) as e:
        raise HTTPException(422, f"{name} must be an integer") from e


def _bool(value) -> bool:
    return str(value).lower() in ("1", "true", "yes", "on")


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

    def item_json(row: int) -> dict:
        it = idx.items[row]
        return {"id": it["id"], "text": it.get("text", ""), "meta": it.get("meta", {}),
                "image": f"/items/{it['id']}/image"}

    @app.exception_handler(TgirError)
    async def _tgir_error(request: Request, exc: TgirError):
        status = 404 if str(exc).startswith("unknown item id") else 400
        return JSONResponse({"detail": str(exc)}, status_code=status)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        import logging

        logging.getLogger("tgir.server").exception("unexpected error on %s", request.url.path)
        return JSONResponse({"detail": "internal error"}, status_code=500)

    @app.get("/health")
    def health() -> dict:
        m = idx.manifest
        return {"status": "ok", "items": m["count"], "model": m["model"]["name"],
                "kind": m["kind"], "dim": m["model"]["dim"],
                "task": getattr(searcher.model, "task", "composed"),
                "query_kinds": list(searcher.kinds),
                "refine_methods": (["qa+saf", "qa", "saf", "filter"]
                                   if hasattr(searcher.model, "refine_scores") else []),
                "undesired_words": hasattr(searcher.model, "refine_scores")}

    @app.get("/schema")
    def schema() -> dict:
        """The attributes an attribute model answers, with their valid values (else null)."""
        return {"attributes": searcher.attribute_schema}

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

    fields = {
        "item_id": {"type": "string", "description": "reference: a catalog item id"},
        "text": {"type": "string", "maxLength": 1000, "description": "modification text"},
        "k": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 10},
        "plus": {"type": "string", "description": "desired words, space separated"},
        "minus": {"type": "string", "description": "undesired words, space separated"},
        "keep_reference": {"type": "boolean", "default": False},
        "method": {"type": "string", "enum": ["qa+saf", "qa", "saf", "filter"],
                   "description": "refinement method of the joint embedding (Sadeh et al.): "
                                  "query arithmetic + soft attribute filtering (default), "
                                  "query arithmetic, soft filtering, or hard filtering"},
        "attributes": {"description": "attribute query (attribute models): an object "
                                      "{attribute: value}, or 'gender=woman; skin=dark'",
                       "oneOf": [{"type": "object", "additionalProperties": {"type": "string"}},
                                 {"type": "string"}]},
    }
    search_body = {"requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "properties": {
            **fields, "image": {"type": "string", "format": "binary",
                                "description": "reference image upload"}}}},
        "application/json": {"schema": {"type": "object", "properties": fields}},
    }}}

    @app.post("/search", openapi_extra=search_body,
              summary="Search with a reference (upload or item id) and a modification text")
    async def search(request: Request) -> dict:
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
        text = data.get("text") or ""
        if not isinstance(text, str):
            raise HTTPException(422, "text must be a string")
        q = Query(text=text, image=image, item_id=data.get("item_id") or None,
                  plus=_words(data.get("plus")), minus=_words(data.get("minus")),
                  keep_reference=_bool(data.get("keep_reference", False)),
                  attributes=_attributes(data.get("attributes")),
                  method=_method(data.get("method")), image_name=image_name)
        if q.item_id is not None and not isinstance(q.item_id, str):
            raise HTTPException(422, "item_id must be a string")
        k = _int(data.get("k"), "k", 10)
        hits = searcher.search(q, k)
        return {"query": {"text": q.text, "item_id": q.item_id, "plus": q.plus,
                          "minus": q.minus, "uploaded": image is not None, "k": k,
                          "method": q.method,
                          "attributes": (searcher.complete_attributes(q.attributes)
                                         if q.attributes else None)},
                "notes": list(searcher.notes),
                "results": [{**asdict(h), "image": f"/items/{h.id}/image"} for h in hits]}

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
