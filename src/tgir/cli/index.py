"""``tgir index``: embed a catalog into a persistent vector index (or extend one)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tgir import TgirError
from tgir.cli.common import Parents, flags


def add_parser(sub: argparse._SubParsersAction, common: Parents) -> None:
    own = flags()
    own.add_argument("run_dir", help="a directory written by tgir train (with --pretrained: "
                                     "the image folder to index)")
    own.add_argument("--catalog", default=None, help="dataset directory or image folder")
    own.add_argument("--pretrained", action="store_true",
                     help="no trained model: index RUN_DIR's images with the shipped "
                          "pretrained EfficientNet-Lite0 (similar-image search from a reference "
                          "image; no text queries). E.g. tgir index --pretrained ~/Pictures "
                          "--out my-index")
    own.add_argument("--image-size", type=int, default=224,
                     help="--pretrained: the side images are resized to (224)")
    own.add_argument("--split", default="test", help="split of a dataset catalog (test)")
    own.add_argument("--out", default=None, help="index directory (default RUN_DIR/index)")
    own.add_argument("--kind", default="flat",
                     choices=["auto", "flat", "flat16", "ivf", "ivf16", "hnsw"],
                     help="flat: exact (the default); flat16: exact over fp16 (half the "
                          "memory); ivf / ivf16 / hnsw: approximate, for large catalogs; auto: "
                          "the fastest of flat / HNSW / IVF settings whose recall@10 on held-out "
                          "catalog vectors reaches --recall, measured at build time (exact under "
                          "20k vectors; the sweep is kept in the manifest)")
    own.add_argument("--recall", type=float, default=0.95,
                     help="--kind auto: the recall@10 the index must reach (0.95)")
    own.add_argument("--report", action="store_true",
                     help="measure and print build time, memory and recall@10 vs exact search "
                          "(stored in the manifest)")
    own.add_argument("--add", action="store_true",
                     help="append the catalog items the index lacks, without rebuilding, and "
                          "drop the items whose files were deleted")
    own.add_argument("--strict", action="store_true",
                     help="stop at the first missing or unreadable image (default: skip it, "
                          "index the rest and list every skipped file by reason)")
    own.add_argument("--backend", default="faiss", choices=["faiss", "milvus"],
                     help="faiss: in-process (default); milvus: milvus-lite inside the index "
                          "directory, or a Milvus server / cluster with --uri")
    own.add_argument("--uri", default=None,
                     help="Milvus server URI for --backend milvus, e.g. http://host:19530")
    own.add_argument("--nlist", type=int, default=None,
                     help="IVF lists (default ~4 sqrt(n), >= 39 points per list)")
    own.add_argument("--nprobe", type=int, default=None,
                     help="IVF lists probed per query (default nlist / 16, >= 8)")
    own.add_argument("--hnsw-m", type=int, default=None,
                     help="HNSW neighbours per node (16; 32 above 1M vectors)")
    own.add_argument("--ef-search", type=int, default=None,
                     help="HNSW search breadth (64; 128 above 1M)")
    x = sub.add_parser("index", help="embed a catalog into a persistent vector index",
                       description="Embed every catalog image with the run's model (batched) "
                       "and write an index directory: the vectors (index.faiss, or milvus.db "
                       "for --backend milvus, or a collection on a Milvus server with --uri), "
                       "items.jsonl and "
                       "manifest.json (model checksum, dim, metric, kind, count). The write is "
                       "atomic: an interrupted run leaves the previous index as it was. A "
                       "catalog is a css2d directory (one split) or any folder of images "
                       "(optionally with catalog.jsonl lines {file, id, text}).",
                       parents=[own, common.device, common.quiet])
    x.set_defaults(func=run)


def run(a: argparse.Namespace) -> None:
    from tgir.search.index import Index, add_to_index, build_index, pretrained_run

    if a.pretrained:  # no training: the shipped EfficientNet-Lite0, image similarity
        if not Path(a.run_dir).is_dir():
            raise TgirError(f"--pretrained indexes a folder of images; {a.run_dir} is not a "
                            f"directory")
        a.catalog = a.catalog or a.run_dir
        if not a.out:
            raise TgirError("--pretrained needs --out INDEX_DIR")
        a.run_dir = str(pretrained_run(a.image_size))
    elif a.catalog is None and not a.add:
        raise TgirError("tgir index needs --catalog DIR (the images to index)")
    if a.add:
        if not a.out:
            raise TgirError("--add needs --out INDEX_DIR (the index to extend)")
        n = add_to_index(a.run_dir, a.out, a.catalog, a.split, progress=not a.quiet,
                         device=a.device, strict=a.strict)
        idx = Index(a.out)
        m = idx.manifest
        idx.close()
        removed = m.get("removed") or []
        print(f"added {n} items to {a.out} ({m['count']} in all)"
              + (f"; dropped {len(removed)} whose files are gone: {', '.join(removed[:5])}"
                 + (" ..." if len(removed) > 5 else "") if removed else ""))
        _print_skipped(m)
        return
    out = Path(a.out) if a.out else Path(a.run_dir) / "index"
    params = {k: v for k, v in (("nlist", a.nlist), ("nprobe", a.nprobe), ("m", a.hnsw_m),
                                ("ef_search", a.ef_search)) if v}
    build_index(a.run_dir, a.catalog, out, a.kind, a.split, params, progress=not a.quiet,
                device=a.device, backend=a.backend, uri=a.uri, report=a.report,
                strict=a.strict, recall_target=a.recall)
    from tgir.engine.distributed import from_env

    if not from_env().is_main:
        return  # a torchrun rank other than 0 embedded its shard; rank 0 wrote the index
    idx = Index(out)
    m = idx.manifest
    idx.close()
    print(f"indexed {m['count']} items ({m['kind']}, {m['model']['dim']}-d, "
          f"{m['store']['backend']}) into {out}")
    _print_skipped(m)
    if "report" in m:
        r = m["report"]
        print(f"build {r['build_seconds']:.2f} s, {r['memory_bytes'] / 2**20:.1f} MiB "
              f"(float32 vectors {r['float32_bytes'] / 2**20:.1f} MiB), recall@10 vs exact "
              f"{r['recall@10']:.3f}, {r['search_ms_per_query']:.3f} ms / query")


def _print_skipped(manifest: dict) -> None:
    """Every image the index left out, by reason (the manifest keeps the full list)."""
    from tgir.search.index import skipped_report

    bad = manifest.get("skipped") or []
    if bad:
        print(skipped_report([(b["file"], b["reason"]) for b in bad]), file=sys.stderr)
        for b in bad[:20]:
            print(f"  {b['file']}: {b['reason']}", file=sys.stderr)
        if len(bad) > 20:
            print(f"  ... {len(bad) - 20} more in the manifest's 'skipped'", file=sys.stderr)
