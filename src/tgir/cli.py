"""The ``tgir`` command. Thin: parses arguments, calls the library, prints.

Every user error (missing file, corrupt image, empty text, unknown config key, run without a
checkpoint) is reported as one line ``tgir: error: ...`` with exit code 2.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from tgir import TgirError, __version__


def _cmd_generate(a: argparse.Namespace) -> None:
    if a.dataset == "folder":
        from tgir.data.folder import write_example

        if not a.source:
            raise TgirError("generate folder needs --source DIR (a generated emoji dataset)")
        out = write_example(a.source, a.out, a.task, limit=a.limit)
        print(f"wrote {out} ({a.task}); next: tgir check {out}")
        return
    if a.dataset == "emoji":
        from tgir.data import emoji

        out = emoji.generate(Path(a.out), size=a.size or 128, seed=a.seed, limit=a.limit,
                             progress=not a.quiet)
        c = emoji.read_annotations(out)["counts"]
        print(f"rendered {c['rendered']} of {c['entries']} emoji; skipped: "
              f"{c['skipped'] or 'none'}; composed queries: {c['composed']}")
        print(f"wrote {out}")
        return
    if a.dataset == "people2d":
        from tgir.data import people2d

        out = people2d.generate(Path(a.out), a.scale, a.seed, progress=not a.quiet,
                                **({"size": a.size} if a.size else {}))
        doc = people2d.read_annotations(out)
        for split in ("train", "test"):
            ids = [i for i in doc["identities"] if i["split"] == split]
            combos = {people2d.combination_key(i["labels"]) for i in ids}
            print(f"{split}: {len(ids)} identities, {sum(len(i['files']) for i in ids)} "
                  f"images, {len(combos)} attribute combinations")
        print(f"wrote {out}")
        return
    if a.dataset == "clipart":
        from tgir.data import clipart

        out = clipart.generate(Path(a.out), size=a.size or 128, limit=a.limit,
                               progress=not a.quiet)
        c = clipart.read_annotations(out)["counts"]
        print(f"rendered {c['rendered']} of {c['svgs']} SVGs; skipped: "
              f"{c['skipped'] or 'none'}; vocabulary {c['vocabulary']} words")
        print(f"wrote {out}")
        return
    from tgir.data import css2d

    out = css2d.generate(Path(a.out), a.scale, a.seed, progress=not a.quiet,
                         **({"image_size": a.size} if a.size else {}))
    doc = css2d.read_annotations(out)
    for name, s in doc["splits"].items():
        print(f"{name}: {len(s['images'])} images, {len(s['queries'])} queries")
    print(f"wrote {out}")


def _cmd_train(a: argparse.Namespace) -> None:
    from tgir import config
    from tgir.engine.train import train
    from tgir.eval.evaluate import evaluate_split

    out = Path(a.out)
    if a.resume:
        if a.set:
            raise TgirError("--resume continues the saved config; --set cannot change it")
        cfg = config.load(out / "config.yaml")
    else:
        cfg = config.load(a.config, a.set)
    if a.strict:
        cfg.data.strict = True
    if a.cache_dir:
        cfg.train.feature_cache = a.cache_dir
    if a.device != "auto":
        cfg.train.device = a.device
    summary = train(cfg, out, resume=a.resume, progress=not a.quiet,
                    validate=lambda m, v, s: evaluate_split(m, v, s, gallery="queries"))
    print(json.dumps(summary))


def _cmd_eval(a: argparse.Namespace) -> None:
    from tgir.eval.evaluate import evaluate_run, format_table

    r = evaluate_run(a.run_dir, a.split, progress=not a.quiet, device=a.device,
                     strict=a.strict, overrides=a.set)
    print(f"{r['dataset']} {r['split']}: {r['queries']} queries, gallery {r['gallery']} images")
    print(format_table({r["model"]: r["metrics"]}))
    print(f"wrote {Path(a.run_dir) / 'metrics.json'}")
    if "sensitivity" in r:
        s = r["sensitivity"]
        print(f"swap sensitivity (cosine of the query with itself under a swapped input; 1 = "
              f"ignored): text {s['text_swap_cos']:.3f}, reference image "
              f"{s['image_swap_cos']:.3f}")
    if a.results:
        from tgir import config, results

        cfg = config.load(Path(a.run_dir) / "config.yaml")
        names = results.paper_names(list(r["metrics"]))
        doc = results.new(f"{r['dataset']} {r['split']}", a.command, cfg.train.steps,
                          [results.make_row(r["model"], [cfg.train.seed], [r["metrics"]],
                                            names)])
        print(f"wrote {results.write(doc, a.results)}")


def _cmd_check(a: argparse.Namespace) -> None:
    from tgir.data.folder import check

    r = check(a.dataset_dir, a.image_size)
    splits = ", ".join(f"{k} {v}" for k, v in sorted(r["splits"].items()))
    print(f"{a.dataset_dir}: {r['task']} data ({r['file']}), {r['lines']} lines, "
          f"{r['images']} images; splits: {splits or 'none'}")
    if "vocabulary" in r:
        print(f"vocabulary: {r['vocabulary']} words")
    for name, values in (r.get("attributes") or {}).items():
        print(f"attribute {name}: {', '.join(values)}")
    if r["ok"]:
        print("no problems found; train with e.g. tgir train configs/folder/"
              + {"composed": "maaf", "captions": "hgan", "attributes": "aihm"}[r["task"]]
              + f".yaml --set data.root={a.dataset_dir} --out RUN")
        return
    for line in r["problems"]:
        print(f"problem: {line}")
    raise TgirError(f"{len(r['problems'])} kind(s) of problem in {a.dataset_dir}; nothing "
                    f"was written")


def _cmd_report(a: argparse.Namespace) -> None:
    from tgir import results

    for i, path in enumerate(a.files):
        doc = results.load(path)
        if len(a.files) > 1:
            print(("\n" if i else "") + f"{path}: {doc['benchmark']}")
        print(results.markdown(doc, a.metrics.split(",") if a.metrics else None))
        if a.source:
            print(f"\n{doc['command']} (commit {doc['commit']}, {doc['date']}, "
                  f"{doc['steps']} steps, {doc['machine']})")


def _words(values: list[str]) -> list[str]:
    return [w for v in values for w in v.replace(",", " ").split()]


def _cmd_search(a: argparse.Namespace) -> None:
    from tgir.data.images import decode_image
    from tgir.search.query import parse_query
    from tgir.search.searcher import Searcher

    if a.image is not None:
        decode_image(a.image)  # a missing or corrupt image fails before any model work
    attrs = {}
    for item in a.attr:
        if "=" not in item:
            raise TgirError(f"--attr expects attribute=value, got {item!r}")
        key, value = item.split("=", 1)
        attrs[key.strip()] = value.strip()
    q, k = parse_query({"text": a.text, "item_id": a.item, "plus": _words(a.plus),
                        "minus": _words(a.minus), "keep_reference": a.keep_reference,
                        "attributes": attrs or None, "method": a.method, "k": a.k},
                       image=a.image)
    if a.index is None and (Path(a.run_dir) / "manifest.json").is_file():  # an index dir
        a.index = a.run_dir
        a.run_dir = json.loads((Path(a.index) / "manifest.json").read_text())["model"]["run_dir"]
        if a.grid is None:
            a.grid = str(Path(a.index) / "search.png")
    s = Searcher(a.run_dir, a.index, device=a.device, progress=not a.quiet)
    hits = s.search(q, k)
    for note in s.notes:
        print(f"note: {note}", file=sys.stderr)
    for h in hits:
        print(f"{h.rank:3d}  {h.id}  {h.score:.4f}  {h.text}")
    grid = Path(a.grid) if a.grid else Path(a.run_dir) / "search.png"
    print(f"wrote {s.grid(q, hits, grid)}")


def _cmd_index(a: argparse.Namespace) -> None:
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


def _cmd_serve(a: argparse.Namespace) -> None:
    from tgir.search.server import serve

    serve(a.index_dir, run_dir=a.run, host=a.host, port=a.port,
          max_upload_mb=a.max_upload_mb)


def _cmd_ablate(a: argparse.Namespace) -> None:
    from tgir.ablation import markdown, run_ablation

    summary = run_ablation(a.config, a.out, a.seeds, a.set,
                           rows=a.rows.split(",") if a.rows else None, progress=not a.quiet,
                           command=a.command, results_path=a.results,
                           train_missing=not a.no_train)
    print(markdown(summary))
    print(f"wrote {Path(a.out) / 'ablation.json'}, {Path(a.out) / 'results.json'}"
          + (f", {a.results}" if a.results else ""))


def _cmd_bench_refine(a: argparse.Namespace) -> None:
    from tgir.data import build
    from tgir.engine.device import pick_device
    from tgir.eval.refine import (
        attribute_examples,
        markdown_table,
        run_refine_benchmark,
        save_result,
    )
    from tgir.models.checkpoint import load_run

    cfg, vocab, model = load_run(a.run_dir, pick_device(a.device))
    if a.qa_raw:
        model.qa_normalize = False  # the literal eq. 9, without unit-length terms
    root = a.data or cfg.data.root
    train_split = build(cfg.data.name, root, cfg.data.train_split, cfg.data.image_size)
    test_split = build(cfg.data.name, root, cfg.data.eval_split, cfg.data.image_size)
    result = run_refine_benchmark(model, vocab, train_split, test_split,
                                  per_category=a.per_category, k=a.k, seed=a.seed,
                                  oracle_steps=a.oracle_steps)
    out = Path(a.out) if a.out else Path(a.run_dir) / "refine"
    save_result(result, out)
    attribute_examples(model, vocab, test_split, out / "attribute_examples.png")
    print(f"{result['queries']} queries ({a.per_category} per category), nDCG@{a.k}, "
          f"test catalog of {len(test_split.images)} items")
    print(markdown_table(result))
    print(f"wrote {out / 'refine.json'}, {out / 'refine.md'}, {out / 'attribute_examples.png'}")
    if a.results:
        from tgir import results
        from tgir.eval.refine import results_rows

        doc = results.new(f"refinement ({cfg.data.name}, {cfg.model['name']})", a.command,
                          cfg.train.steps, results_rows(result, cfg.train.seed),
                          digits=dict.fromkeys(results_rows(result, 0)[0]["metrics"], 3),
                          bold=False)
        print(f"wrote {results.write(doc, a.results)}")


def _cmd_show(a: argparse.Namespace) -> None:
    from tgir.data.sheet import contact_sheet

    out = contact_sheet(Path(a.dataset_dir), Path(a.out) if a.out else None, n=a.n,
                        seed=a.seed, split=a.split)
    print(f"wrote {out}")


def _cmd_demo(a: argparse.Namespace) -> None:
    from tgir.demo import DEFAULT_MODELS, run_demo

    steps_scale = a.steps_scale if a.steps_scale else (1.0 if a.scale == "demo" else 2.0)
    source = a.dataset.split("_")[0]  # attribute benchmarks share their images
    default_dir = ("tgir-demo" if source == "css2d" and a.scale == "demo" else
                   f"tgir-{a.scale}" if source == "css2d" else f"tgir-{source}")
    workdir = Path(a.workdir) if a.workdir else Path(default_dir)
    models = (a.models or DEFAULT_MODELS[a.dataset]).split(",")
    line = run_demo(workdir, models=models, scale=a.scale,
                    steps_scale=steps_scale, fresh=a.fresh, progress=not a.quiet,
                    dataset=a.dataset, seeds=a.seeds, command=a.command,
                    results_path=a.results, cache_dir=a.cache_dir)
    print(json.dumps(line), flush=True)
    if not a.no_serve:
        from tgir.search.server import serve

        best = next((m for m in ("maaf", "tirg") if m in models), models[0])
        run = workdir / "runs" / best
        index = run / "index"
        if not (index / "manifest.json").is_file():
            from tgir import config
            from tgir.data.catalog import catalog_split
            from tgir.search.index import build_index

            cfg = config.load(run / "config.yaml")
            build_index(run, cfg.data.root, index,
                        split=catalog_split(cfg.data.name, cfg.data.eval_split),
                        progress=not a.quiet)
        serve(index, run_dir=run, host=a.host, port=a.port)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tgir",
        description="Text-guided image retrieval: find images by a reference image plus a "
                    "text change, by a sentence, or by a set of attributes. Generates its own "
                    "benchmarks (css2d, emoji, clipart), trains the models of five papers "
                    "(MAAF with TIRG and baselines, hffca, HGAN, AIHM, the joint "
                    "visual-textual embedding), evaluates them under their papers' protocols, "
                    "indexes a catalog (or your own folder of images) and serves a search page.",
        epilog="Start with `tgir demo`; `tgir COMMAND --help` explains each command.")
    p.add_argument("--version", action="version", version=f"tgir {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    g = sub.add_parser("generate", help="generate a dataset (css2d, emoji, clipart, people2d)",
                       description="css2d: TIRG's CSS benchmark re-created in 2D (scenes of "
                       "objects on a 3x3 grid, add/remove/make texts, held-out colour-shape "
                       "compositions). emoji: Noto Color Emoji rendered from Debian's font "
                       "with CLDR names, keywords, person attributes and composed / text / "
                       "attribute benchmarks. clipart: Debian's openclipart SVGs rendered "
                       "with their titles, keywords and categories. people2d: drawn "
                       "pedestrians with Market-1501's 12 attribute groups, correlated and "
                       "noisily labelled as in the published annotation statistics, several "
                       "images per identity (attribute queries, AIHM).")
    g.add_argument("dataset", choices=["css2d", "emoji", "clipart", "people2d", "folder"],
                   help="what to generate; folder: an example of the own-data format "
                        "(JSON Lines + images) written from a generated emoji dataset")
    g.add_argument("--out", required=True, help="output directory (replaced atomically)")
    g.add_argument("--scale", default="demo", choices=["demo", "paper", "tiny"],
                   help="css2d demo: ~13k/6k images (minutes to train); paper: CSS size, "
                        "~19k images and ~17k queries per split; tiny: for tests. people2d "
                        "demo: 800 identities x 8 images; paper: Market-1501's 1,501 x 17")
    g.add_argument("--seed", type=int, default=0, help="random seed (same seed, same data)")
    g.add_argument("--size", type=int, default=None,
                   help="image side in pixels (css2d 64, emoji / clipart 128)")
    g.add_argument("--limit", type=int, default=None,
                   help="emoji / clipart: only the first N source entries (for a quick look)")
    g.add_argument("--source", default=None, help="folder: the generated emoji directory")
    g.add_argument("--task", default="composed", choices=["composed", "captions", "attributes"],
                   help="folder: which format to write (triplets, captions or attributes)")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    g.set_defaults(func=_cmd_generate)

    c = sub.add_parser("check", help="check your own data folder before training",
                       description="Read DIR's triplets.jsonl, captions.jsonl or "
                       "attributes.jsonl (the own-data format, README 'Your own data'), open "
                       "every image once and report the counts per split, the vocabulary, the "
                       "attribute values, and every problem by kind with its line number: "
                       "lines that are not JSON, paths outside DIR, missing / corrupt / "
                       "duplicate images, empty texts, attribute values seen once. Exit 2 when "
                       "there is a problem. Writes nothing.")
    c.add_argument("dataset_dir", help="a folder with one of the JSON Lines files and images")
    c.add_argument("--image-size", type=int, default=64,
                   help="decode every image at this size (64), as training would")
    c.set_defaults(func=_cmd_check)

    t = sub.add_parser("train", help="train a model from a YAML config",
                       description="Train the model a YAML config describes (see configs/). "
                       "Writes RUN_DIR/config.yaml, vocab.json, log.csv, checkpoints/last."
                       "safetensors (every train.ckpt_every steps) and model.safetensors.")
    t.add_argument("config", nargs="?", metavar="CONFIG",
                   help="YAML config, e.g. configs/css2d/maaf.yaml (required unless --resume)")
    t.add_argument("--out", required=True, help="run directory")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.steps=500 (repeatable)")
    t.add_argument("--resume", action="store_true",
                   help="continue RUN_DIR from its last checkpoint with its saved config")
    t.add_argument("--strict", action="store_true",
                   help="stop at the first missing or unreadable image (default: check all and "
                        "report them by name with counts)")
    t.add_argument("--cache-dir", default=None, metavar="DIR",
                   help="where a frozen backbone's features are cached (default "
                        "$XDG_CACHE_HOME/tgir/features, i.e. ~/.cache/tgir/features)")
    t.add_argument("--device", default="auto", help="auto, cpu or cuda")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    t.set_defaults(func=_cmd_train)

    e = sub.add_parser("eval", help="evaluate a trained run under its paper's protocol",
                       description="Evaluate under the dataset's paper protocol. Composed: "
                       "embed the gallery once, compose every query, rank with the reference "
                       "image excluded and count a hit when the target's label is in the top "
                       "K (TIRG / MAAF; FashionIQ adds per-category R@10 / R@50). Attributes "
                       "and person search: Rank-1/5/10, mAP, mINP. CUB / Flowers: AP@50 and "
                       "R@1. Prints a table and writes RUN_DIR/metrics.json.")
    e.add_argument("run_dir", help="a directory written by tgir train")
    e.add_argument("--split", default=None, help="split to evaluate (default: config's)")
    e.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="protocol / data location overrides: eval.gallery=all|queries, "
                        "eval.keep_reference=true, eval.rerank=N, data.root=DIR")
    e.add_argument("--device", default="auto", help="auto, cpu or cuda")
    e.add_argument("--strict", action="store_true",
                   help="stop at the first missing or unreadable image")
    e.add_argument("--results", default=None, metavar="FILE",
                   help="also write a results file (schema of tgir report), e.g. "
                        "results/X.json")
    e.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    e.set_defaults(func=_cmd_eval)

    r = sub.add_parser("report", help="print a results file as the README's markdown table",
                       description="Print results/*.json files (written by tgir demo, ablate, "
                       "bench refine and eval with --results) as markdown tables: one row per "
                       "model, mean ± std over seeds, the best of each column in bold. The "
                       "README's tables are this output.")
    r.add_argument("files", nargs="+", metavar="FILE", help="results files")
    r.add_argument("--metrics", default=None,
                   help="comma-separated columns, e.g. R@1,R@10 (default: all)")
    r.add_argument("--source", action="store_true",
                   help="also print the command, commit, date, steps and machine")
    r.set_defaults(func=_cmd_report)

    s = sub.add_parser("search", help="search a catalog: image + text, text, or attributes",
                       description="Rank the catalog of an index (default: the run's "
                       "evaluation split, indexed into RUN_DIR/index) for one query, print the "
                       "top-k ids with scores and write a PNG grid of the query and the "
                       "results. The query kinds a model answers: a reference image (--image "
                       "or --item) + a change (--text): MAAF, TIRG, hffca, the baselines and "
                       "the joint embedding; a text alone (--text): HGAN and the joint "
                       "embedding; attributes (--attr): AIHM and the attribute classifier; a "
                       "reference image alone: an index built with tgir index --pretrained. "
                       "Asking a model for another kind says which kinds it answers. The "
                       "reference item itself is left out unless --keep-reference.")
    s.add_argument("run_dir", help="a directory written by tgir train, or an index directory "
                                   "(its manifest names the run)")
    s.add_argument("--image", default=None, help="reference image file")
    s.add_argument("--item", default=None, help="reference: a catalog item id instead")
    s.add_argument("--text", default="", help='modification, e.g. "make top-left red"')
    s.add_argument("--plus", nargs="*", default=[], metavar="WORD",
                   help="desired words (the joint embedding's refinement; other models add "
                        "them to the text), e.g. --plus red")
    s.add_argument("--minus", nargs="*", default=[], metavar="WORD",
                   help="undesired words (joint embedding only, e.g. --minus blue)")
    s.add_argument("--attr", action="append", default=[], metavar="ATTRIBUTE=VALUE",
                   help="attribute query for an attribute model (AIHM), repeatable, e.g. "
                        "--attr gender=woman --attr skin=dark")
    s.add_argument("--method", default=None, choices=["qa+saf", "qa", "saf", "filter"],
                   help="joint embedding's refinement: qa+saf (default: query arithmetic + "
                        "soft attribute filtering), qa, saf, or filter (hard, on the "
                        "catalog text)")
    s.add_argument("--index", default=None, help="an index directory (tgir index)")
    s.add_argument("-k", type=int, default=10, help="number of results (default 10)")
    s.add_argument("--keep-reference", action="store_true",
                   help="let the reference item appear in the results")
    s.add_argument("--grid", default=None, help="PNG path (default RUN_DIR/search.png)")
    s.add_argument("--device", default="auto", help="auto, cpu or cuda")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    s.set_defaults(func=_cmd_search)

    x = sub.add_parser("index", help="embed a catalog into a persistent vector index",
                       description="Embed every catalog image with the run's model (batched) "
                       "and write an index directory: the vectors (index.faiss, or milvus.db "
                       "for --backend milvus, or a collection on a Milvus server with --uri), "
                       "items.jsonl and "
                       "manifest.json (model checksum, dim, metric, kind, count). The write is "
                       "atomic: an interrupted run leaves the previous index as it was. A "
                       "catalog is a css2d directory (one split) or any folder of images "
                       "(optionally with catalog.jsonl lines {file, id, text}).")
    x.add_argument("run_dir", help="a directory written by tgir train (with --pretrained: "
                                   "the image folder to index)")
    x.add_argument("--catalog", default=None, help="dataset directory or image folder")
    x.add_argument("--pretrained", action="store_true",
                   help="no trained model: index RUN_DIR's images with the shipped "
                        "pretrained EfficientNet-Lite0 (similar-image search from a reference "
                        "image; no text queries). E.g. tgir index --pretrained ~/Pictures "
                        "--out my-index")
    x.add_argument("--image-size", type=int, default=224,
                   help="--pretrained: the side images are resized to (224)")
    x.add_argument("--split", default="test", help="split of a dataset catalog (test)")
    x.add_argument("--out", default=None, help="index directory (default RUN_DIR/index)")
    x.add_argument("--kind", default="flat",
                   choices=["auto", "flat", "flat16", "ivf", "ivf16", "hnsw"],
                   help="flat: exact (the default); flat16: exact over fp16 (half the "
                        "memory); ivf / ivf16 / hnsw: approximate, for large catalogs; auto: "
                        "the fastest of flat / HNSW / IVF settings whose recall@10 on held-out "
                        "catalog vectors reaches --recall, measured at build time (exact under "
                        "20k vectors; the sweep is kept in the manifest)")
    x.add_argument("--recall", type=float, default=0.95,
                   help="--kind auto: the recall@10 the index must reach (0.95)")
    x.add_argument("--report", action="store_true",
                   help="measure and print build time, memory and recall@10 vs exact search "
                        "(stored in the manifest)")
    x.add_argument("--add", action="store_true",
                   help="append the catalog items the index lacks, without rebuilding, and "
                        "drop the items whose files were deleted")
    x.add_argument("--strict", action="store_true",
                   help="stop at the first missing or unreadable image (default: skip it, "
                        "index the rest and list every skipped file by reason)")
    x.add_argument("--backend", default="faiss", choices=["faiss", "milvus"],
                   help="faiss: in-process (default); milvus: milvus-lite inside the index "
                        "directory, or a Milvus server / cluster with --uri")
    x.add_argument("--uri", default=None,
                   help="Milvus server URI for --backend milvus, e.g. http://host:19530")
    x.add_argument("--nlist", type=int, default=None,
                   help="IVF lists (default ~4 sqrt(n), >= 39 points per list)")
    x.add_argument("--nprobe", type=int, default=None,
                   help="IVF lists probed per query (default nlist / 16, >= 8)")
    x.add_argument("--hnsw-m", type=int, default=None,
                   help="HNSW neighbours per node (16; 32 above 1M vectors)")
    x.add_argument("--ef-search", type=int, default=None,
                   help="HNSW search breadth (64; 128 above 1M)")
    x.add_argument("--device", default="auto", help="auto, cpu or cuda")
    x.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    x.set_defaults(func=_cmd_index)

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
    v.set_defaults(func=_cmd_serve)

    b = sub.add_parser("ablate", help="a paper's ablation table (hffca: Table 1 of Zhang et "
                       "al.; hgan: Tables 3 / 5 of Zheng et al.)",
                       description="For an hffca config, train the 8 on/off combinations of "
                       "MCF, CGP and RCC (Table 1 of Zhang et al., Heterogeneous Feature Fusion "
                       "and Cross-modal Alignment for Composed Image Retrieval); for an hgan "
                       "config, the sentence level alone, + word, + word + phrase, and soft / "
                       "max-Gumbel attention (Tables 3 and 5 of Zheng et al., Hierarchical "
                       "Gumbel Attention Network for Text-based Person Search). Each row for "
                       "each seed; prints mean ± std of the paper's metrics and writes a "
                       "results file. Finished runs are reused.")
    b.add_argument("config", help="an hffca or hgan config, e.g. configs/css2d/hffca.yaml")
    b.add_argument("--out", required=True, help="directory for the runs and ablation.json")
    b.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (0 1 2)")
    b.add_argument("--rows", default=None,
                   help="comma-separated subset, e.g. baseline,hffca (default all 8)")
    b.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value for every run (repeatable)")
    b.add_argument("--results", default=None, metavar="FILE",
                   help="also write the results file here (always: OUT/results.json)")
    b.add_argument("--no-train", action="store_true",
                   help="report the finished runs only (each row lists the seeds it has)")
    b.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    b.set_defaults(func=_cmd_ablate)

    bn = sub.add_parser("bench", help="paper benchmarks over a trained run",
                        description="Benchmarks that need more than the retrieval metrics of "
                        "tgir eval.")
    bsub = bn.add_subparsers(dest="bench", required=True, metavar="BENCHMARK")
    rf = bsub.add_parser(
        "refine", help="Table 1 of Sadeh et al.: SAF / QA / QA+SAF with V-nDCG, T-nDCG, MM",
        description="Generate the multimodal refinement queries of Sadeh et al. (Joint "
        "Visual-Textual Embedding for Multimodal Style Search) on the run's test "
        "catalog (a query item + desired / undesired words of one attribute category: add, "
        "remove or replace), rank the catalog with soft attribute filtering (eq. 12), query "
        "arithmetic (eq. 9-10) and both (eq. 13), and score the top K with V-nDCG (a visual "
        "oracle trained with a triplet loss), T-nDCG (the metadata meets the request) and "
        "MM = sqrt(V x T). Also draws attribute-extraction examples (Figure 3).")
    rf.add_argument("run_dir", help="a trained joint-embedding run (model.name: joint)")
    rf.add_argument("--data", default=None, help="catalog directory (default: the run's)")
    rf.add_argument("--per-category", type=int, default=200,
                    help="queries per attribute category (200)")
    rf.add_argument("-k", type=int, default=10, help="nDCG cut-off K (10)")
    rf.add_argument("--seed", type=int, default=0, help="query sampling seed (0)")
    rf.add_argument("--oracle-steps", type=int, default=400,
                    help="training steps of the visual oracle (400)")
    rf.add_argument("--qa-raw", action="store_true",
                    help="query arithmetic on the raw vectors (literal eq. 9) instead of "
                         "unit-length terms")
    rf.add_argument("--out", default=None, help="output directory (default RUN_DIR/refine)")
    rf.add_argument("--device", default="auto", help="auto, cpu or cuda")
    rf.add_argument("--results", default=None, metavar="FILE",
                    help="also write a results file (one row per attribute category)")
    rf.set_defaults(func=_cmd_bench_refine)

    h = sub.add_parser("show", help="write a contact sheet PNG of a dataset",
                       description="Draw a grid of a dataset's images with their names or "
                       "texts (and, for composed benchmarks, a few query -> target pairs) so a "
                       "person can look at what was built.")
    h.add_argument("dataset_dir", help="a directory written by tgir generate")
    h.add_argument("--out", default=None, help="PNG path (default DATASET_DIR/contact_sheet.png)")
    h.add_argument("-n", type=int, default=48, help="number of images (48)")
    h.add_argument("--split", default="test", help="split to show (test)")
    h.add_argument("--seed", type=int, default=0, help="which random images (0)")
    h.set_defaults(func=_cmd_show)

    d = sub.add_parser("demo", help="generate a benchmark, train and evaluate its models, serve",
                       description="The whole pipeline on this machine: generate a benchmark "
                       "(default css2d at demo scale), train its models from the built-in "
                       "configs, evaluate them under the paper's protocol, print one JSON line "
                       "and write a results file, then serve the search page. css2d / emoji: "
                       "MAAF, TIRG and the concat / image-only / text-only baselines next to "
                       "copy-the-source (about 10 minutes); emoji_attr / css2d_attr / "
                       "people2d_attr: AIHM and "
                       "the attribute classifier; clipart / emoji_pairs: the joint "
                       "visual-textual embedding; css2d_text / emoji_text: HGAN. Finished runs "
                       "are reused, interrupted ones resumed.")
    d.add_argument("--dataset", default="css2d",
                   choices=["css2d", "emoji", "emoji_attr", "css2d_attr", "people2d_attr",
                            "clipart", "emoji_pairs", "css2d_text", "emoji_text"],
                   help="benchmark: css2d (default) or emoji: reference image + text "
                        "queries; emoji_attr (person emoji: gender, skin, hair, role) or "
                        "css2d_attr (scene: object count, first object's colour / shape / "
                        "size) or people2d_attr (drawn pedestrians, Market-1501's attributes, "
                        "correlated and noisy): attribute queries (AIHM) on zero-shot "
                        "splits; clipart or "
                        "emoji_pairs: the joint image / catalog-text embedding (MBMR + "
                        "attributes vs MBMR vs triplet) and its refinement search; css2d_text / "
                        "emoji_text: sentence -> image search (HGAN)")
    d.add_argument("--workdir", default=None,
                   help="where data and runs go (default tgir-demo, or tgir-paper)")
    d.add_argument("--scale", default="demo", choices=["demo", "paper", "tiny"],
                   help="css2d scale: demo (fits 15 CPU minutes), paper (CSS size, as in "
                        "MAAF's Table 1; about 25 minutes on 2 idle cores) or tiny (a smoke "
                        "run)")
    d.add_argument("--models", default=None,
                   help="comma-separated models to train (default: maaf,tirg,concat,"
                        "image_only,text_only; for the attribute benchmarks: aihm,aihm4,"
                        "attr_classifier; for clipart: joint,joint_mbmr,joint_triplet)")
    d.add_argument("--steps-scale", type=float, default=None,
                   help="multiply every config's training steps (default 1 for demo, 2 for "
                        "paper; e.g. 0.05 for a smoke run)")
    d.add_argument("--fresh", action="store_true", help="retrain even if runs exist")
    d.add_argument("--cache-dir", default=None, metavar="DIR",
                   help="where frozen backbone features are cached (default "
                        "~/.cache/tgir/features)")
    d.add_argument("--seeds", type=int, nargs="+", default=[0],
                   help="training seeds (default 0); seed 0 trains into runs/MODEL, seed S "
                        "into runs/MODEL-seedS; the results report mean ± std")
    d.add_argument("--results", default=None, metavar="FILE",
                   help="also write the results file here (always: WORKDIR/results/"
                        "DATASET.json)")
    d.add_argument("--no-serve", action="store_true",
                   help="stop after the results (default: then serve the search page on the "
                        "best model's index of the test split)")
    d.add_argument("--host", default="127.0.0.1", help="address to serve on (127.0.0.1)")
    d.add_argument("--port", type=int, default=8000, help="port to serve on (8000)")
    d.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    d.set_defaults(func=_cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    a = parser.parse_args(argv)
    a.command = "tgir " + shlex.join(argv)  # recorded in results files
    if a.cmd == "train" and not a.resume and not a.config:
        parser.error("train needs a CONFIG (or --resume)")
    try:
        a.func(a)
    except TgirError as e:
        print(f"tgir: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tgir: interrupted (checkpoints and finished files are intact)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
