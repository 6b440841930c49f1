"""Vector-index backends behind one interface (issue 10): FAISS in-process (the default) and
Milvus through ``pymilvus``'s ``MilvusClient`` — embedded milvus-lite (a ``.db`` directory kept
inside the index directory) on one machine, a Milvus cluster URI for a catalog too big for one.

Both store row numbers 0..N-1 (the position of the item in ``items.jsonl``) and answer
inner-product top-k. An index directory names its backend in ``manifest.json``:
``{"backend": "faiss"}`` or ``{"backend": "milvus", "uri": ..., "collection": ...}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import faiss
import numpy as np

from tgir import TgirError

BACKENDS = ("faiss", "milvus")
LITE_NAME = "milvus.db"  # the milvus-lite data directory inside an index directory
_MILVUS_INDEX = {"flat": "FLAT", "ivf": "IVF_FLAT", "hnsw": "HNSW"}


class VectorIndex(Protocol):
    """What the search layer needs from a backend."""

    @property
    def ntotal(self) -> int: ...

    def add(self, vectors: np.ndarray) -> None: ...

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...

    def vectors(self) -> np.ndarray: ...

    def save(self, directory: Path) -> dict: ...

    def close(self) -> None: ...


class FaissIndex:
    """A FAISS index (flat / IVF / HNSW, inner product) stored as ``index.faiss``."""

    def __init__(self, index: faiss.Index):
        self.index = index

    @classmethod
    def open(cls, directory: Path, entry: dict) -> FaissIndex:
        return cls(faiss.read_index(str(Path(directory) / "index.faiss")))

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def add(self, vectors: np.ndarray) -> None:
        self.index.add(np.ascontiguousarray(vectors, dtype=np.float32))

    # FAISS's exact scan parallelises over queries, so one query runs on one thread; a BLAS
    # product over the same memory uses every core (bench/search.py, 1M x 512 on 2 cores:
    # 1.7x faster for one query, 1.8x for 64). Used for up to 64 queries over a large flat
    # index while the score matrix stays under 100M floats; FAISS's own scan otherwise.
    SMALL_BATCH, LARGE_INDEX, MAX_SCORES = 64, 20_000, 100_000_000

    def _flat_matrix(self) -> np.ndarray | None:
        """A zero-copy (N, D) view of an exact float32 index's vectors, else None."""
        if type(self.index) not in (faiss.IndexFlatIP, faiss.IndexFlat) or not self.ntotal:
            return None
        d = self.index.d
        return faiss.rev_swig_ptr(self.index.get_xb(), self.ntotal * d).reshape(-1, d)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        q = np.ascontiguousarray(queries, dtype=np.float32)
        k = min(k, self.ntotal)
        xb = (self._flat_matrix() if len(q) <= self.SMALL_BATCH
              and self.LARGE_INDEX <= self.ntotal and len(q) * self.ntotal <= self.MAX_SCORES
              else None)
        if xb is None or self.index.metric_type != faiss.METRIC_INNER_PRODUCT:
            return self.index.search(q, k)
        s = q @ xb.T
        part = np.argpartition(-s, k - 1, axis=1)[:, :k]
        top = np.take_along_axis(s, part, 1)
        order = np.lexsort((part, -top), axis=1)  # score desc, ties by row
        return np.take_along_axis(top, order, 1), np.take_along_axis(part, order, 1)

    def vectors(self) -> np.ndarray:
        return self.index.reconstruct_n(0, self.ntotal)

    def save(self, directory: Path) -> dict:
        faiss.write_index(self.index, str(Path(directory) / "index.faiss"))
        return {"backend": "faiss"}

    def close(self) -> None:
        pass


def _milvus_client(uri: str):
    try:
        from pymilvus import MilvusClient
    except ImportError as e:  # pragma: no cover - a dependency
        raise TgirError("the milvus backend needs pymilvus (and milvus-lite for a local "
                        "file): pip install pymilvus milvus-lite") from e
    try:
        return MilvusClient(uri)
    except Exception as e:  # pymilvus raises its own exception types for a bad uri / lock
        raise TgirError(f"cannot open Milvus at {uri}: {e}") from e


class MilvusIndex:
    """A Milvus collection with fields ``id`` (the row, INT64 primary key) and ``vector``.
    ``uri`` ending in ``.db`` is milvus-lite (in-process, a local directory); anything else is a
    Milvus server / cluster (``http://host:19530``)."""

    def __init__(self, uri: str, collection: str, kind: str = "flat", params: dict | None = None,
                 create_dim: int | None = None):
        self.uri, self.collection, self.kind = uri, collection, kind
        self.params = dict(params or {})
        self.client = _milvus_client(uri)
        if create_dim is not None:
            self._create(create_dim)
        elif not self.client.has_collection(collection):
            raise TgirError(f"Milvus at {uri} has no collection {collection!r}")
        else:
            self.client.load_collection(collection)
        self._n = int(self.client.get_collection_stats(collection)["row_count"])

    @property
    def is_lite(self) -> bool:
        return self.uri.endswith(".db")

    def _create(self, dim: int) -> None:
        from pymilvus import DataType, MilvusClient

        if self.kind not in _MILVUS_INDEX:
            raise TgirError(f"unknown index kind {self.kind!r}; choose one of "
                            f"{', '.join(_MILVUS_INDEX)}")
        if self.client.has_collection(self.collection):
            self.client.drop_collection(self.collection)
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        ip = self.client.prepare_index_params()
        build = ({"nlist": int(self.params.get("nlist") or 128)} if self.kind == "ivf" else
                 {"M": int(self.params.get("m") or 32),
                  "efConstruction": int(self.params.get("ef_construction") or 80)}
                 if self.kind == "hnsw" else {})
        ip.add_index(field_name="vector", index_type=_MILVUS_INDEX[self.kind],
                     metric_type="IP", params=build)
        self.client.create_collection(self.collection, schema=schema, index_params=ip)

    @classmethod
    def open(cls, directory: Path, entry: dict) -> MilvusIndex:
        uri = entry["uri"]
        if uri == LITE_NAME:  # milvus-lite inside the index directory
            uri = str(Path(directory) / LITE_NAME)
        return cls(uri, entry["collection"], entry.get("kind", "flat"), entry.get("params"))

    @property
    def ntotal(self) -> int:
        return self._n

    def add(self, vectors: np.ndarray, chunk: int = 5000) -> None:
        v = np.ascontiguousarray(vectors, dtype=np.float32)
        for i in range(0, len(v), chunk):
            self.client.insert(self.collection, [{"id": self._n + i + j, "vector": row}
                                                 for j, row in enumerate(v[i:i + chunk])])
        self._n += len(v)

    def truncate(self, n: int) -> None:
        """Delete rows n.. (the rows of an interrupted ``--add``)."""
        self.client.delete(self.collection, filter=f"id >= {int(n)}")
        self._n = int(n)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        q = np.ascontiguousarray(queries, dtype=np.float32)
        k = min(k, self._n)
        params = ({"nprobe": int(self.params.get("nprobe") or 16)} if self.kind == "ivf" else
                  {"ef": max(k, int(self.params.get("ef_search") or 64))}
                  if self.kind == "hnsw" else {})
        res = self.client.search(self.collection, data=q, limit=k,
                                 search_params={"metric_type": "IP", "params": params})
        scores = np.full((len(q), k), -np.inf, dtype=np.float32)
        rows = np.full((len(q), k), -1, dtype=np.int64)
        for i, hits in enumerate(res):
            for j, h in enumerate(hits[:k]):
                scores[i, j], rows[i, j] = h["distance"], h["id"]
        return scores, rows

    def vectors(self) -> np.ndarray:
        it = self.client.query_iterator(self.collection, batch_size=4096, filter="id >= 0",
                                        output_fields=["vector"])
        out = None
        try:
            while batch := it.next():
                if out is None:
                    out = np.zeros((self._n, len(batch[0]["vector"])), dtype=np.float32)
                for r in batch:
                    if r["id"] < self._n:
                        out[r["id"]] = r["vector"]
        finally:
            it.close()
        return out if out is not None else np.zeros((0, 0), dtype=np.float32)

    def save(self, directory: Path) -> dict:
        """The manifest entry. A milvus-lite store inside ``directory`` is closed (it holds a
        lock while open, and the directory is about to be renamed) and recorded by its
        relative name; any other URI (a server, or a .db a user named) is recorded as is."""
        entry = {"backend": "milvus", "uri": self.uri, "collection": self.collection,
                 "kind": self.kind, "params": self.params}
        if self.is_lite:
            self.close()
            if Path(self.uri).resolve() == (Path(directory) / LITE_NAME).resolve():
                entry["uri"] = LITE_NAME
        else:
            self.client.flush(self.collection)
        return entry

    def close(self) -> None:
        _close_client(self.client, self.uri)


def _close_client(client, uri: str) -> None:
    """Close a client; for milvus-lite also stop its in-process server, which holds a lock on
    the data directory until then."""
    try:
        client.close()
    finally:
        if uri.endswith(".db"):
            from milvus_lite.server_manager import server_manager_instance

            server_manager_instance.release_server(uri)


def drop_collection(uri: str, collection: str) -> None:
    """Remove a collection (an old one that a rebuilt index no longer points at)."""
    client = _milvus_client(uri)
    try:
        if client.has_collection(collection):
            client.drop_collection(collection)
    finally:
        _close_client(client, uri)


def open_backend(directory: Path, manifest: dict) -> FaissIndex | MilvusIndex:
    entry = manifest.get("store") or {"backend": "faiss"}
    if entry["backend"] == "faiss":
        return FaissIndex.open(directory, entry)
    if entry["backend"] == "milvus":
        return MilvusIndex.open(directory, entry)
    raise TgirError(f"unknown index backend {entry['backend']!r} in {directory}")
