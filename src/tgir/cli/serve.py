"""``tgir serve``: the search page and JSON API on an index."""

from __future__ import annotations

import argparse

from tgir.cli.common import Parents


def add_parser(sub: argparse._SubParsersAction, common: Parents) -> None:
    v = sub.add_parser("serve", help="serve the search page and JSON API on an index",
                       description="Serve an index over HTTP (FastAPI + uvicorn): the search "
                       "page at /, POST /search, GET /items/{id}, /items/{id}/image, "
                       "/health; OpenAPI schema at /docs. Binds 127.0.0.1 unless told.")
    v.add_argument("index_dir", help="an index directory written by tgir index")
    v.add_argument("--run", default=None, help="run directory (default: the manifest's)")
    v.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    v.add_argument("--port", type=int, default=8000, help="port (8000)")
    v.add_argument("--max-upload-mb", type=float, default=10.0,
                   help="largest accepted upload in MB (10)")
    v.set_defaults(func=run)


def run(a: argparse.Namespace) -> None:
    from tgir.search.server import serve

    serve(a.index_dir, run_dir=a.run, host=a.host, port=a.port,
          max_upload_mb=a.max_upload_mb)
