"""A persistent FAISS index of a catalog embedded by a trained model.

Index directory::

    manifest.json   format, model (run dir, name, sha256 of model.safetensors, dim), metric,
                    kind + parameters, count, created / updated, catalog (root, kind, split),
                    store (the backend: faiss, or milvus with its uri and collection)
    index.faiss     the FAISS index over L2-normalised embeddings (inner product = cosine)
      or milvus.db  the milvus-lite data directory (``--backend milvus`` without ``--uri``)
    items.jsonl     one {"id", "file", "text", "meta"} per row, in index order

Every write goes to a temporary sibling directory that is renamed into place, so a crash or a
kill while indexing leaves the previous index intact and loadable. (A Milvus *server*
collection is written under a new name and the manifest switched to it; an interrupted
``--add`` there leaves extra rows, which the next load deletes.)
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import faiss
import numpy as np
import torch
from tqdm import tqdm

from tgir import TgirError
from tgir.data.catalog import CatalogItem, read_catalog
from tgir.data.images import decode_image, to_tensor_batch
from tgir.data.store import atomic_dir
from tgir.models.checkpoint import file_sha256
from tgir.models.tasks import capabilities
from tgir.search.backends import (
    BACKENDS,
    LITE_NAME,
    FaissIndex,
    MilvusIndex,
    drop_collection,
    open_backend,
)
from tgir.search.batcher import SearchBatcher

FORMAT, VERSION = "tgir-index", 1
KINDS = ("auto", "flat", "flat16", "ivf", "ivf16", "hnsw")


def choose_kind(n: int, dim: int) -> str:
    """The kind ``--kind auto`` picks from the catalog size: exact float32 while the scan is
    cheap (up to 100k vectors), exact fp16 (half the memory and bandwidth) up to 1M, HNSW up
    to 10M when its graph fits, IVF over fp16 codes beyond."""
    if n <= 100_000:
        return "flat"
    if n <= 1_000_000:
        return "flat16"
    return "hnsw" if n * dim * 4 <= 64 * 2**30 else "ivf16"


def default_params(kind: str, n: int) -> dict:
    """Size-dependent defaults: IVF lists ~ 4 sqrt(n) (at least 39 points per list), probing
    1/16 of them (at least 8); HNSW M 16 below 1M vectors, else 32, efSearch 64 / 128."""
    if kind in ("ivf", "ivf16"):
        nlist = max(1, min(int(4 * np.sqrt(n)), n // 39))
        return {"nlist": nlist, "nprobe": min(nlist, max(8, nlist // 16))}
    if kind == "hnsw":
        big = n > 1_000_000
        return {"m": 32 if big else 16, "ef_construction": 80, "ef_search": 128 if big else 64}
    return {}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def make_faiss(kind: str, dim: int, vectors: np.ndarray, params: dict
               ) -> tuple[faiss.Index, dict]:
    """Create (and train, for IVF) an inner-product index of ``kind``; returns it + params
    (``params`` overrides the size-dependent defaults)."""
    n = len(vectors)
    p = {**default_params(kind, n), **{k: v for k, v in params.items() if v}}
    if kind == "flat":
        return faiss.IndexFlatIP(dim), {}
    if kind == "flat16":
        return faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_fp16,
                                          faiss.METRIC_INNER_PRODUCT), {}
    if kind in ("ivf", "ivf16"):
        nlist = int(p["nlist"])
        quant = faiss.IndexFlatIP(dim)
        index = (faiss.IndexIVFFlat(quant, dim, nlist, faiss.METRIC_INNER_PRODUCT)
                 if kind == "ivf" else
                 faiss.IndexIVFScalarQuantizer(quant, dim, nlist,
                                               faiss.ScalarQuantizer.QT_fp16,
                                               faiss.METRIC_INNER_PRODUCT))
        index.train(vectors)
        index.nprobe = min(nlist, int(p["nprobe"]))
        return index, {"nlist": nlist, "nprobe": index.nprobe}
    if kind == "hnsw":
        m = int(p["m"])
        index = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = int(p["ef_construction"])
        index.hnsw.efSearch = int(p["ef_search"])
        return index, {"m": m, "ef_construction": index.hnsw.efConstruction,
                       "ef_search": index.hnsw.efSearch}
    raise TgirError(f"unknown index kind {kind!r}; choose one of {', '.join(KINDS)}")


AUTO_EXACT_BELOW = 20_000  # under this many vectors an exact scan is fast enough


def _qps(index: faiss.Index, q: np.ndarray, k: int, repeat: int = 2) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        index.search(q, k)
        best = min(best, time.perf_counter() - t)
    return len(q) / max(best, 1e-9)


def _recall(got: np.ndarray, truth_scores: np.ndarray, q: np.ndarray,
            vectors: np.ndarray) -> float:
    """A returned item counts when its exact score reaches the exact k-th best (ties)."""
    true = np.einsum("qd,qkd->qk", q, vectors[np.maximum(got, 0)])
    return float(np.mean((true >= truth_scores[:, -1:] - 1e-5) & (got >= 0)))


def auto_select(vectors: np.ndarray, recall_target: float = 0.95, k: int = 10,
                held_out: int = 256, seed: int = 0) -> tuple[str, dict, dict]:
    """``--kind auto``: the fastest index meeting ``recall_target`` (recall@k against exact
    search) on ``held_out`` catalog vectors left out of the candidates' build. Candidates:
    HNSW (M 32, efConstruction 40, efSearch 16 ... 512) and IVF (4 sqrt(n) lists, nprobe 1
    ... 256), each built once; exact flat when nothing meets the target, or below
    ``AUTO_EXACT_BELOW`` vectors. Returns (kind, params, the measured sweep)."""
    n, d = vectors.shape
    if n < AUTO_EXACT_BELOW:
        return "flat", {}, {"reason": f"under {AUTO_EXACT_BELOW} vectors: exact"}
    rng = np.random.default_rng(seed)
    hold = rng.choice(n, size=min(held_out, n // 10), replace=False)
    keep = np.setdiff1d(np.arange(n), hold)
    base, q = vectors[keep], vectors[hold]
    exact = faiss.IndexFlatIP(d)
    exact.add(base)
    truth, _ = exact.search(q, k)
    rows = [{"kind": "flat", "params": {}, "recall": 1.0, "qps": _qps(exact, q, k)}]
    hnsw = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = 40
    hnsw.add(base)
    for ef in (16, 32, 64, 128, 256, 512):
        hnsw.hnsw.efSearch = ef
        rows.append({"kind": "hnsw", "params": {"m": 32, "ef_construction": 40,
                                                "ef_search": ef},
                     "recall": _recall(hnsw.search(q, k)[1], truth, q, base),
                     "qps": _qps(hnsw, q, k)})
    nlist = max(1, min(int(4 * np.sqrt(n)), n // 39))
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
    ivf.train(base)
    ivf.add(base)
    for probe in (1, 2, 4, 8, 16, 32, 64, 128, 256):
        if probe > nlist:
            break
        ivf.nprobe = probe
        rows.append({"kind": "ivf", "params": {"nlist": nlist, "nprobe": probe},
                     "recall": _recall(ivf.search(q, k)[1], truth, q, base),
                     "qps": _qps(ivf, q, k)})
    ok = [r for r in rows if r["recall"] >= recall_target] or rows[:1]  # else exact
    best = max(ok, key=lambda r: r["qps"])
    for r in rows:
        r["qps"] = round(r["qps"], 1)
        r["recall"] = round(r["recall"], 4)
    sweep = {"recall_target": recall_target, "k": k, "held_out_queries": len(q),
             "candidates": rows,
             "chosen": {"kind": best["kind"], **best["params"], "recall": best["recall"]},
             "speedup_vs_flat": round(best["qps"] / rows[0]["qps"], 2)}
    return best["kind"], dict(best["params"]), sweep


def index_report(index: faiss.Index, vectors: np.ndarray, build_seconds: float,
                 queries: int = 200, k: int = 10, seed: int = 0) -> dict:
    """Build time, memory (the serialised index) and recall@k against exact search, with
    ``queries`` catalog vectors as queries (each finds itself and its neighbours). A returned
    item counts when its exact score reaches the exact k-th best score, so ties between
    duplicate vectors do not count as misses."""
    rng = np.random.default_rng(seed)
    q = vectors[rng.choice(len(vectors), size=min(queries, len(vectors)), replace=False)]
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    k = min(k, len(vectors))
    best, _ = exact.search(q, k)
    t = time.time()
    _, got = index.search(q, k)
    search_ms = 1000 * (time.time() - t) / len(q)
    true = np.einsum("qd,qkd->qk", q, vectors[np.maximum(got, 0)])
    recall = float(np.mean((true >= best[:, -1:] - 1e-5) & (got >= 0)))
    return {"build_seconds": round(build_seconds, 3),
            "memory_bytes": int(faiss.serialize_index(index).nbytes),
            "float32_bytes": int(vectors.nbytes), f"recall@{k}": recall,
            "search_ms_per_query": round(search_ms, 4), "report_queries": len(q)}


@torch.no_grad()
def embed_catalog(model, root: Path, items: list[CatalogItem], batch_size: int = 128,
                  progress: bool = True, strict: bool = False,
                  skipped: list[tuple[int, str]] | None = None) -> np.ndarray:
    """``embed_target`` vectors of the catalog images that can be read, batched;
    l2-normalised unless the model scores raw vectors (``model.normalize_embeddings = False``:
    AIHM's matching head, the attribute classifier's log-probabilities). An unreadable image
    is left out and recorded in ``skipped`` as (position in ``items``, reason); ``strict``
    stops at the first one instead."""
    dev = next(model.parameters()).device
    out = []
    dim = None
    for i in tqdm(range(0, len(items), batch_size), desc="embed catalog", disable=not progress,
                  mininterval=1.0):
        imgs = []
        for j, it in enumerate(items[i:i + batch_size], start=i):
            try:
                imgs.append(decode_image(root / it.file, model.image_size))
            except TgirError as e:
                if strict or skipped is None:
                    raise
                skipped.append((j, str(e)))
        if imgs:
            out.append(model.embed_target(to_tensor_batch(np.stack(imgs)).to(dev))
                       .float().cpu().numpy())
            dim = out[-1].shape[1]
    if not out:
        raise TgirError(f"none of the {len(items)} catalog images could be read"
                        + (f" (first: {skipped[0][1]})" if skipped else ""))
    vecs = np.concatenate(out).astype(np.float32).reshape(-1, dim)
    if not capabilities(model).normalized:
        return vecs
    return vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)


def skipped_report(skipped: list[tuple[str, str]], show: int = 5) -> str:
    """"N images skipped" with counts by reason and the first files of each (like train)."""
    by: dict[str, list[str]] = {}
    for file, reason in skipped:
        key = ("missing" if reason.startswith("image not found") else
               "empty" if reason.startswith("empty") else
               "too large" if reason.startswith("image too large") else "unreadable")
        by.setdefault(key, []).append(file)
    parts = []
    for key, files in by.items():
        more = f" ... and {len(files) - show} more" if len(files) > show else ""
        parts.append(f"{len(files)} {key}: {', '.join(files[:show])}{more}")
    return f"skipped {len(skipped)} image(s) that cannot be used: " + "; ".join(parts)


def _write_dir(out: Path, store: Callable[[Path], dict], items: list[dict], manifest: dict
               ) -> dict:
    """Write an index directory atomically: temp sibling dir, then rename into place.
    ``store(tmp)`` writes the vectors into ``tmp`` (or a Milvus server) and returns the
    manifest's ``store`` entry, which this returns too."""
    with atomic_dir(out) as tmp:
        entry = store(tmp)
        with open(tmp / "items.jsonl", "w") as f:
            for it in items:
                f.write(json.dumps(it) + "\n")
        (tmp / "manifest.json").write_text(json.dumps({**manifest, "store": entry}, indent=1))
    return entry


def _milvus_writer(vecs: np.ndarray, kind: str, params: dict, uri: str | None,
                   base: Path | None = None, collection: str | None = None
                   ) -> Callable[[Path], dict]:
    """A ``store`` callable that writes ``vecs`` into milvus-lite inside the new directory
    (copying the rows of ``base``, an existing milvus-lite store, first) or, with ``uri``, into
    a new collection of that Milvus server."""
    def write(tmp: Path) -> dict:
        name = collection or (f"tgir_{time.strftime('%Y%m%d%H%M%S')}_{uuid.uuid4().hex[:8]}"
                              if uri else "items")
        target = uri or str(tmp / LITE_NAME)
        if base is not None and not uri:
            shutil.copytree(base, tmp / LITE_NAME)
            store = MilvusIndex(target, name, kind, params)
        else:
            store = MilvusIndex(target, name, kind, params, create_dim=int(vecs.shape[1]))
        store.add(vecs)
        return store.save(tmp)
    return write


def _embed_sharded(model, root: Path, items: list[CatalogItem], out: Path, info,
                   progress: bool, strict: bool = False
                   ) -> tuple[np.ndarray, list[tuple[int, str]]] | None:
    """Under torchrun each rank embeds its contiguous share of the catalog into a shard file;
    rank 0 merges them in order (and gets the full matrix and every skipped item, as
    positions in ``items``); the others get None."""
    from tgir.engine import distributed

    share = distributed.part(np.arange(len(items)), (info.rank, info.world))
    skipped: list[tuple[int, str]] = []
    vecs = embed_catalog(model, root, [items[i] for i in share], progress=progress,
                         strict=strict, skipped=skipped)
    skipped = [(int(share[j]), why) for j, why in skipped]
    if not info.enabled:
        return vecs, skipped
    shards = out.parent / f".{out.name}.shards"
    shards.mkdir(parents=True, exist_ok=True)
    np.save(shards / f"rank{info.rank:04d}.npy", vecs)
    (shards / f"rank{info.rank:04d}.skipped.json").write_text(json.dumps(skipped))
    distributed.barrier(info)
    if not info.is_main:
        return None
    merged = np.concatenate([np.load(shards / f"rank{r:04d}.npy") for r in range(info.world)])
    every = [tuple(x) for r in range(info.world) for x in json.loads(
        (shards / f"rank{r:04d}.skipped.json").read_text())]
    shutil.rmtree(shards, ignore_errors=True)
    return merged, every


TEXT_STORE = "captions.npy"  # a --pretrained folder's caption vectors (MiniLM), row = item


def caption_vectors(items: list[CatalogItem]) -> tuple[np.ndarray, dict]:
    """MiniLM sentence vectors of the items' texts (zeros for an item without text) and the
    manifest entry describing them."""
    from tgir.models.pretrained import SentenceEncoder

    enc = SentenceEncoder()
    has = [i for i, it in enumerate(items) if it.text.strip()]
    vecs = np.zeros((len(items), enc.dim), dtype=np.float32)
    if has:
        vecs[has] = enc([items[i].text for i in has]).numpy()
    return vecs, {"file": TEXT_STORE, "model": enc.name, "dim": enc.dim,
                  "items_with_text": len(has)}


def _with_captions(store: Callable[[Path], dict], items: list, manifest: dict
                   ) -> Callable[[Path], dict]:
    """``store`` that also writes the caption vectors of ``items`` (CatalogItems or their
    dicts) and records them in ``manifest`` (a --pretrained folder with captions)."""
    cat = [it if isinstance(it, CatalogItem) else CatalogItem(**it) for it in items]
    vecs, manifest["text_store"] = caption_vectors(cat)

    def write(tmp: Path) -> dict:
        np.save(tmp / TEXT_STORE, vecs)
        return store(tmp)
    return write


def pretrained_run(image_size: int = 224, encoder: str = "efficientnet_lite0") -> Path:
    """A run directory for the untrained image-similarity model (``models/pretrained.py``):
    its config, an empty vocabulary and the shipped weights, written once into the user
    cache (``$XDG_CACHE_HOME/tgir/pretrained``) so an index built from it can be served."""
    import os

    import torch

    from tgir import config as cfgmod
    from tgir.data.text import Vocabulary
    from tgir.models.checkpoint import atomic_save
    from tgir.models.registry import create_model

    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tgir"
    run = base / "pretrained" / f"{encoder}-{image_size}"
    if (run / "model.safetensors").is_file():
        return run
    run.mkdir(parents=True, exist_ok=True)
    cfg = cfgmod.from_dict({"data": {"name": "folder", "root": ".", "image_size": image_size},
                            "model": {"name": "pretrained", "image_encoder": encoder},
                            "train": {"steps": 0}})
    cfgmod.dump(cfg, run / "config.yaml")
    Vocabulary([]).save(run / "vocab.json")
    torch.manual_seed(0)
    model = create_model("pretrained", image_encoder=encoder)
    atomic_save(model.state_dict(), run / "model.safetensors",
                {"step": 0, "model": cfg.model, "image_size": image_size})
    return run


def _check_build_args(kind: str, backend: str, uri: str | None) -> None:
    if kind not in KINDS:
        raise TgirError(f"unknown index kind {kind!r}; choose one of {', '.join(KINDS)}")
    if backend not in BACKENDS:
        raise TgirError(f"unknown index backend {backend!r}; choose one of "
                        f"{', '.join(BACKENDS)}")
    if uri and backend != "milvus":
        raise TgirError("--uri is for --backend milvus")
    if backend == "milvus" and kind in ("flat16", "ivf16"):
        raise TgirError(f"--kind {kind} is a FAISS kind; Milvus takes flat, ivf or hnsw")


def _metric(model) -> dict:
    """The manifest's metric description and whether stored vectors are l2-normalised."""
    caps = capabilities(model)
    normalized = caps.normalized
    return {"metric": ("model matching head over stored vectors" if caps.pair_scorer
                       else "cosine (inner product of l2-normalised vectors)" if normalized
                       else "inner product"),
            "normalized": normalized}


def build_index(run_dir: str | Path, catalog: str | Path, out: str | Path, kind: str = "flat",
                split: str = "test", params: dict | None = None, progress: bool = True,
                device: str = "auto", backend: str = "faiss", uri: str | None = None,
                report: bool = False, strict: bool = False,
                recall_target: float = 0.95) -> Path:
    """Embed every catalog image with the run's model and write an index directory.
    ``backend="milvus"`` stores the vectors in milvus-lite inside the directory, or with
    ``uri`` in a Milvus server's collection (the directory keeps the items and manifest).
    ``kind="auto"`` picks the kind from the catalog size (``choose_kind``); ``report`` adds
    build time, memory and recall@10 against exact search to the manifest. Under torchrun the
    catalog is embedded in shards, one per rank, and rank 0 writes the merged index.
    Unreadable images are left out and listed in the manifest's ``skipped`` (file, reason);
    ``strict`` stops at the first one."""
    from tgir.engine import distributed
    from tgir.engine.device import pick_device
    from tgir.models.checkpoint import load_run

    _check_build_args(kind, backend, uri)
    run, root, out = Path(run_dir).resolve(), Path(catalog).resolve(), Path(out)
    info, dev = distributed.setup(pick_device(device))
    cfg, _, model = load_run(run, dev)
    if capabilities(model).pair_scorer and kind not in ("flat", "auto"):
        raise TgirError(f"model {cfg.model['name']!r} scores every (query, image) pair with its "
                        f"matching head, which needs the stored vectors: use --kind flat")
    cat_kind, items = read_catalog(root, split, missing_ok=not strict)
    got = _embed_sharded(model, root, items, out, info, progress and info.is_main, strict)
    if got is None:  # a rank other than 0: its shard is written, rank 0 builds the index
        distributed.barrier(info)
        return out
    vecs, bad = got
    skipped = [(items[j].file, why) for j, why in bad]
    drop = {j for j, _ in bad}
    items = [it for j, it in enumerate(items) if j not in drop]
    extra = {}
    if kind == "auto":
        if capabilities(model).pair_scorer:  # its own scorer needs every stored vector
            kind = "flat"
        elif backend == "milvus":  # Milvus builds its own index: chosen by size
            by_size = choose_kind(len(vecs), vecs.shape[1])
            kind = {"flat16": "flat", "ivf16": "ivf"}.get(by_size, by_size)
        else:  # measured: the fastest index meeting the recall target on held-out queries
            kind, chosen, extra["auto"] = auto_select(vecs, recall_target)
            params = {**chosen, **(params or {})}
    if backend == "faiss":
        t = time.time()
        index, used = make_faiss(kind, vecs.shape[1], vecs, params or {})
        index.add(vecs)
        if report:
            extra["report"] = index_report(index, vecs, time.time() - t)
        store = FaissIndex(index).save
    else:
        used = {**default_params(kind, len(vecs)), **(params or {})}
        store = _milvus_writer(vecs, kind, used, uri)
    manifest = {
        "format": FORMAT, "version": VERSION,
        "model": {"run_dir": str(run), "name": cfg.model["name"],
                  "sha256": file_sha256(run / "model.safetensors"), "dim": int(vecs.shape[1]),
                  "image_size": model.image_size},
        **_metric(model), "kind": kind, "params": used, "count": len(items),
        "catalog": {"root": str(root), "kind": cat_kind, "split": split},
        "created": _now(), "updated": _now(), "processes": info.world,
        "skipped": [{"file": f, "reason": why} for f, why in skipped], **extra,
    }
    if cfg.model["name"] == "pretrained" and any(it.text.strip() for it in items):
        store = _with_captions(store, items, manifest)
    old = _server_collection(out)
    entry = _write_dir(out, store, [asdict(it) for it in items], manifest)
    if old is not None and old != (entry.get("uri"), entry.get("collection")):
        try:  # best effort: the rebuilt index no longer points at it
            drop_collection(*old)
        except TgirError:
            pass
    distributed.barrier(info)
    return out


def _server_collection(out: Path) -> tuple[str, str] | None:
    """(uri, collection) of the Milvus collection outside the directory that an existing
    index at ``out`` uses, to drop once the rebuilt index has replaced it."""
    try:
        entry = json.loads((out / "manifest.json").read_text()).get("store") or {}
    except (OSError, json.JSONDecodeError):
        return None
    if entry.get("backend") == "milvus" and entry.get("uri") not in (None, LITE_NAME):
        return entry["uri"], entry["collection"]
    return None


class Index:
    """A loaded index directory: the vector store (FAISS or Milvus), items and manifest.
    ``batch_requests``: concurrent single-query searches share one index call
    (``SearchBatcher``; the server turns it on)."""

    def __init__(self, path: str | Path, batch_requests: bool = False):
        self.path = Path(path)
        mpath = self.path / "manifest.json"
        if not mpath.is_file():
            raise TgirError(f"no index at {self.path} (manifest.json missing; build one with "
                            f"tgir index RUN_DIR --catalog DATA --out {self.path})")
        try:
            self.manifest = json.loads(mpath.read_text())
            self.items = [json.loads(x) for x in
                          (self.path / "items.jsonl").read_text().splitlines() if x]
            if self.manifest.get("format") != FORMAT:
                raise TgirError(f"{mpath} is not a tgir index manifest")
            self.store = open_backend(self.path, self.manifest)
        except (json.JSONDecodeError, OSError, RuntimeError) as e:
            raise TgirError(f"index {self.path} is corrupt: {e}") from e
        n = self.manifest["count"]
        if isinstance(self.store, MilvusIndex) and self.store.ntotal > n == len(self.items):
            self.store.truncate(n)  # rows of an interrupted --add into a Milvus server
        if not (self.store.ntotal == len(self.items) == n):
            raise TgirError(f"index {self.path} is inconsistent: {self.store.ntotal} vectors, "
                            f"{len(self.items)} items, manifest says {n}")
        self.row_of = {it["id"]: i for i, it in enumerate(self.items)}
        ts = self.manifest.get("text_store")
        self.caption_vectors = (np.load(self.path / ts["file"]) if ts else None)
        if self.caption_vectors is not None and len(self.caption_vectors) != n:
            raise TgirError(f"index {self.path} is inconsistent: "
                            f"{len(self.caption_vectors)} caption vectors for {n} items")
        self.root = Path(self.manifest["catalog"]["root"])
        self.batcher = SearchBatcher(self.store.search) if batch_requests else None

    @property
    def dim(self) -> int:
        return int(self.manifest["model"]["dim"])

    @property
    def faiss(self) -> faiss.Index:
        """The FAISS index of a FAISS-backed directory."""
        if not isinstance(self.store, FaissIndex):
            raise TgirError(f"index {self.path} is not FAISS-backed")
        return self.store.index

    def close(self) -> None:
        self.store.close()

    def check_model(self, run_dir: str | Path, dim: int) -> None:
        """Refuse a model other than the one that embedded the catalog."""
        m = self.manifest["model"]
        if dim != m["dim"]:
            raise TgirError(f"index {self.path} holds {m['dim']}-d vectors but the model in "
                            f"{run_dir} embeds to {dim}-d: rebuild the index for this model")
        digest = file_sha256(Path(run_dir) / "model.safetensors")
        if digest != m["sha256"]:
            raise TgirError(f"index {self.path} was built with another model (checksum "
                            f"{m['sha256'][:12]}, {run_dir} has {digest[:12]}): rebuild it "
                            f"with tgir index")

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        q = np.ascontiguousarray(queries, dtype=np.float32)
        if self.manifest.get("normalized", True):
            q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        if self.batcher is not None:
            return self.batcher.search(q, k)
        return self.store.search(q, k)

    def vectors(self) -> np.ndarray:
        """Every stored vector (N, D), for models that score pairs themselves."""
        try:
            return self.store.vectors()
        except RuntimeError as e:
            raise TgirError(f"index {self.path} ({self.manifest['kind']}) cannot return its "
                            f"vectors; rebuild it with --kind flat") from e

    def image_path(self, item_id: str) -> Path:
        """The file of a catalog item, resolved from the index's own items only."""
        row = self.row_of.get(item_id)
        if row is None:
            raise KeyError(item_id)
        p = (self.root / self.items[row]["file"]).resolve()
        if not p.is_relative_to(self.root.resolve()):
            raise KeyError(item_id)
        return p


def add_to_index(run_dir: str | Path, index_dir: str | Path, catalog: str | Path | None = None,
                 split: str | None = None, progress: bool = True, device: str = "auto",
                 strict: bool = False) -> int:
    """Embed the catalog items the index does not hold yet and append them (no rebuild).
    Items whose files were deleted from the catalog are dropped (that rebuilds the vector
    store from the stored vectors of the rest). Returns how many were added; the manifest's
    ``skipped`` lists new files that could not be read, ``removed`` the dropped ids."""
    from tgir.engine.device import pick_device
    from tgir.models.checkpoint import load_run

    idx = Index(index_dir)
    run = Path(run_dir).resolve()
    _, _, model = load_run(run, pick_device(device))
    idx.check_model(run, idx.dim)
    root = Path(catalog).resolve() if catalog else idx.root
    if root != idx.root:
        raise TgirError(f"--add takes items from the index's own catalog {idx.root}, not {root}")
    _, items = read_catalog(root, split or idx.manifest["catalog"]["split"],
                            missing_ok=True)
    # matched by file, so an id that depends on its neighbours (cat.png + cat.jpg -> ids with
    # the extension) stays the one the index has
    present = {it.file for it in items if (root / it.file).is_file()}
    indexed = {it["file"] for it in idx.items}
    gone = [it["id"] for it in idx.items if it["file"] not in present]
    new = [it for it in items if it.file in present and it.file not in indexed]
    taken = {it["id"] for it in idx.items if it["file"] in present}
    new = [it if it.id not in taken else CatalogItem(it.file.replace("/", "__"), it.file,
                                                     it.text, it.meta) for it in new]
    if gone:
        idx = _drop_items(idx, set(gone))
    added = 0
    if new:
        skipped: list[tuple[int, str]] = []
        vecs = embed_catalog(model, root, new, progress=progress, strict=strict,
                             skipped=skipped)
        bad = {j for j, _ in skipped}
        new_ok = [it for j, it in enumerate(new) if j not in bad]
        entry = idx.manifest.get("store") or {"backend": "faiss"}
        if entry.get("uri") == LITE_NAME:  # a copy of the milvus-lite store, extended
            idx.close()
            store = _milvus_writer(vecs, entry["kind"], entry.get("params") or {}, None,
                                   base=idx.path / LITE_NAME, collection=entry["collection"])
        else:  # FAISS in memory, or a Milvus server (rows appended, then the manifest)
            idx.store.add(vecs)
            store = idx.store.save
        manifest = {**idx.manifest, "count": idx.manifest["count"] + len(new_ok),
                    "updated": _now(),
                    "skipped": [{"file": new[j].file, "reason": why} for j, why in skipped]}
        if gone:
            manifest["removed"] = gone
        every = idx.items + [asdict(it) for it in new_ok]
        if manifest.get("text_store"):
            store = _with_captions(store, every, manifest)
        _write_dir(idx.path, store, every, manifest)
        added = len(new_ok)
    idx.close()
    return added


def _drop_items(idx: Index, ids: set[str]) -> Index:
    """Rewrite the index without ``ids`` (their files were deleted from the catalog): the
    vector store is rebuilt, with its kind and parameters, from the kept stored vectors."""
    keep = [i for i, it in enumerate(idx.items) if it["id"] not in ids]
    vecs = idx.vectors()[keep]
    items = [idx.items[i] for i in keep]
    m = idx.manifest
    entry = m.get("store") or {"backend": "faiss"}
    if not items:
        raise TgirError(f"every item of {idx.path} was deleted from its catalog: rebuild it")
    if entry.get("backend", "faiss") == "faiss":
        index, used = make_faiss(m["kind"], vecs.shape[1], vecs, m.get("params") or {})
        index.add(vecs)
        store = FaissIndex(index).save
    else:
        store = _milvus_writer(vecs, m["kind"], m.get("params") or {},
                               None if entry.get("uri") == LITE_NAME else entry.get("uri"))
    idx.close()
    manifest = {**m, "count": len(items), "updated": _now(), "removed": sorted(ids)}
    if manifest.get("text_store"):
        store = _with_captions(store, items, manifest)
    _write_dir(idx.path, store, items, manifest)
    return Index(idx.path)
