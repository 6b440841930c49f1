"""``tgir demo``: generate css2d (demo scale), train every model, evaluate, print one JSON line.

Top of the stack (like the CLI): it calls data, engine, eval and search. Finished runs whose
saved config equals the one asked for are reused, an interrupted run is resumed from its last
checkpoint, so running the demo again costs only what is missing.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import yaml

import tgir
from tgir import TgirError, config
from tgir import results as results_file
from tgir.data import build
from tgir.data.sources import source_of
from tgir.engine.train import train
from tgir.eval.evaluate import copy_source_baseline, evaluate_run, evaluate_split, format_table
from tgir.eval.plots import plot_val_curves

CONFIG_DIR = Path(tgir.__file__).parent / "configs"
REPORT_KS = ("R@1", "R@10", "R@50", "mAP", "i2t R@5", "t2i R@5", "i2t R@20", "t2i R@20",
             "t2i R@1", "t2i R@10", "t2i mAP")
DEFAULT_MODELS = {"css2d": "maaf,tirg,concat,image_only,text_only",
                  "emoji": "maaf,tirg,concat,image_only,text_only",
                  "emoji_attr": "aihm,aihm4,attr_classifier",
                  "css2d_attr": "aihm,aihm4,attr_classifier",
                  "people2d_attr": "aihm,aihm4,attr_classifier",
                  "clipart": "joint,joint_mbmr,joint_triplet",
                  "emoji_pairs": "joint",
                  "css2d_text": "hgan", "emoji_text": "hgan"}
# row names in results files and README tables
DISPLAY = {"maaf": "MAAF", "tirg": "TIRG", "concat": "concat", "image_only": "image only",
           "text_only": "text only", "copy_source": "copy source", "aihm": "AIHM 2-layer",
           "aihm4": "AIHM 4-layer", "attr_classifier": "attribute classifier",
           "joint": "MBMR + attribute branch (joint)", "joint_mbmr": "MBMR (joint_mbmr)",
           "joint_triplet": "triplet, margin 0.2 (joint_triplet)", "hgan": "HGAN"}


def builtin_config(dataset: str, model: str) -> Path:
    dataset = dataset.split("_")[0]  # one config folder per image source
    p = CONFIG_DIR / dataset / f"{model}.yaml"
    if not p.is_file():
        known = sorted(x.stem for x in (CONFIG_DIR / dataset).glob("*.yaml"))
        raise TgirError(f"no built-in config for {dataset}/{model} (have: {', '.join(known)})")
    return p


def _ensure_data(dataset: str, root: Path, scale: str, progress: bool) -> None:
    """Generate the benchmark unless an identical one (same scale, seed 0) is there."""
    src = source_of(dataset)
    if src.is_current(root, scale):
        return
    print(f"generating {src.name}" + (f" ({scale} scale)" if src.scaled else "")
          + f" in {root}", file=sys.stderr)
    src.generate_default(root, scale, progress)


def _train_one(cfg: config.Config, run: Path, fresh: bool, progress: bool, data) -> str:
    validate = lambda m, v, s: evaluate_split(m, v, s, gallery="queries")  # noqa: E731
    if run.exists() and not fresh:
        saved = run / "config.yaml"
        same = saved.is_file() and yaml.safe_load(saved.read_text()) == cfg.to_dict()
        if same and (run / "model.safetensors").is_file():
            return "reused"
        if same and (run / "checkpoints" / "last.safetensors").is_file():
            train(cfg, run, resume=True, validate=validate, progress=progress, data=data)
            return "resumed"
    if run.exists():
        import shutil

        shutil.rmtree(run)
    train(cfg, run, validate=validate, progress=progress, data=data)
    return "trained"


def _search_example(workdir: Path, models: list[str], test_data) -> Path | None:
    """Query the best model with the first test query and save the result grid as a PNG."""
    from tgir.search.searcher import Query, Searcher

    name = next((m for m in ("maaf", "tirg") if m in models), None)
    if name is None or test_data.task != "composed" or test_data.num_queries == 0:
        return None
    src = int(test_data.query_source[0])
    searcher = Searcher(workdir / "runs" / name, progress=False)
    q = Query(text=test_data.query_text[0], item_id=test_data.image_ids[src])
    return searcher.grid(q, searcher.search(q, k=8), workdir / "search_example.png")


def _demo_config(dataset: str, model: str, root: Path, seed: int, steps_scale: float,
                 cache_dir: str | None, overrides: list[str] | None) -> config.Config:
    """The built-in config of ``model`` on ``dataset``: its steps (and lr milestones) times
    ``steps_scale``, the seed, the cache directory and the ``--set`` overrides."""
    cfg = config.load(builtin_config(dataset, model), [f"data.root={root}", *(overrides or [])])
    cfg.train.steps = max(1, int(round(cfg.train.steps * steps_scale)))
    cfg.train.lr_milestones = [int(round(x * steps_scale)) for x in cfg.train.lr_milestones]
    cfg.train.seed = seed
    if cache_dir:
        cfg.train.feature_cache = cache_dir
    return cfg


def _describe_test(label: str, test_data, workdir: Path, dataset: str, models: list[str]
                   ) -> None:
    """One line on the test split and its protocol (and the catalog task's curves)."""
    if test_data.task == "composed":
        print(f"{label} test split: {test_data.num_queries} queries, gallery "
              f"{len(test_data.images)} images (source excluded)")
    elif test_data.task == "text":
        print(f"{label} test split: {test_data.num_queries} captions, {len(test_data.images)} "
              f"images; text -> image (t2i) and image -> text (i2t), identity relevance")
    elif test_data.task == "pairs":
        print(f"{label} test split: {test_data.num_queries} catalog items; top-K accuracy of "
              f"image -> metadata text (i2t) and text -> image (t2i)")
        curves = workdir / f"{dataset}_topk_curves.png"
        plot_val_curves({m: workdir / "runs" / m for m in models}, curves)
        print(f"validation curves: {curves}")
    else:
        print(f"{label} zero-shot test split: {test_data.num_queries} attribute-combination "
              f"queries (none seen in training), gallery {len(test_data.images)} images")


def _train_models(dataset: str, models: list[str], seeds: list[int], root: Path,
                  steps_scale: float, cache_dir: str | None, overrides: list[str] | None,
                  workdir: Path, fresh: bool, progress: bool, train_data, stages: dict
                  ) -> tuple[dict, dict, dict, dict, dict]:
    """Train (or reuse / resume) and evaluate every model for every seed; returns the first
    seed's metrics per model, every seed's, the steps, the keep_best note and the timings."""
    results: dict[str, dict[str, float]] = {}  # the first seed's metrics per model
    per_seed: dict[str, list[dict[str, float]]] = {}
    steps: dict[str, int] = {}
    chosen: dict[str, str] = {}  # train.keep_best: ", best val mAP" in the training column
    timings: dict[str, float] = {}
    for m in models:
        for seed in seeds:
            cfg = _demo_config(dataset, m, root, seed, steps_scale, cache_dir, overrides)
            steps[m] = cfg.train.steps
            if cfg.train.keep_best:
                chosen[m] = f", checkpoint of best val {cfg.train.keep_best}"
            name = m if seed == 0 else f"{m}-seed{seed}"
            run = workdir / "runs" / name
            t = time.time()
            how = _train_one(cfg, run, fresh, progress, train_data)
            stages[f"train {name}"] = round(time.time() - t, 1)
            t_eval = time.time()
            r = evaluate_run(run, progress=progress)
            stages[f"eval {name}"] = round(time.time() - t_eval, 1)
            timings[name] = round(time.time() - t, 1)
            results.setdefault(m, r["metrics"])
            per_seed.setdefault(m, []).append(r["metrics"])
            head = next(k for k in ("R@1", "t2i R@1", "i2t R@5") if k in r["metrics"])
            print(f"{name}: {how}, {head} {r['metrics'][head]:.3f} ({timings[name]:.0f} s)",
                  file=sys.stderr)
    return results, per_seed, steps, chosen, timings


def run_demo(workdir: Path, models: list[str], scale: str = "demo", steps_scale: float = 1.0,
             fresh: bool = False, progress: bool = True, dataset: str = "css2d",
             seeds: list[int] | None = None, command: str | None = None,
             results_path: str | Path | None = None, cache_dir: str | None = None,
             overrides: list[str] | None = None) -> dict:
    """Generate the benchmark (css2d at ``scale``, or emoji), train ``models`` from the
    built-in configs (their steps times ``steps_scale``) for each of ``seeds`` (seed 0 into
    ``workdir/runs/MODEL``, seed S into ``runs/MODEL-seedS``), evaluate; writes
    ``workdir/results/DATASET.json`` (and ``results_path``) in the ``tgir.results`` schema
    and returns the one-line summary (the first seed's figures)."""
    seeds = list(seeds or [0])
    t0 = time.time()
    stages: dict[str, float] = {}  # where the demo's time goes (bench/demo figures)
    source = dataset.split("_")[0]
    root = workdir / "data" / (f"{source}-{scale}" if source_of(dataset).scaled else source)
    _ensure_data(dataset, root, scale, progress)
    stages["generate"] = round(time.time() - t0, 1)
    t = time.time()
    image_size = config.load(builtin_config(dataset, models[0])).data.image_size
    train_data = build(dataset, root, "train", image_size)
    test_data = build(dataset, root, "test", image_size)
    stages["load"] = round(time.time() - t, 1)
    results, per_seed, steps, chosen, timings = _train_models(
        dataset, models, seeds, root, steps_scale, cache_dir, overrides, workdir, fresh,
        progress, train_data, stages)
    label = f"{dataset} {scale}" if source == "css2d" else dataset
    if test_data.task == "composed":
        results["copy_source"] = copy_source_baseline(test_data)
        per_seed["copy_source"] = [results["copy_source"]]  # no training: one value
        steps["copy_source"] = 0
    _describe_test(label, test_data, workdir, dataset, models)
    print(format_table(results))
    t = time.time()
    example = _search_example(workdir, models, test_data)
    if example:
        stages["index + search"] = round(time.time() - t, 1)
        print(f"example search: {example}")
    print("time: " + ", ".join(f"{k} {v:.0f} s" for k, v in stages.items()), file=sys.stderr)
    key = dataset if source != "css2d" or scale == "demo" else f"{dataset}-{scale}"
    line = {key: {m: {k: round(r[k], 4) for k in REPORT_KS if k in r}
                  for m, r in results.items()},
            "seconds": round(time.time() - t0, 1)}
    name = f"results-{dataset}.json" if dataset != source else "results.json"
    (workdir / name).write_text(json.dumps(
        {**line, "full": results, "train_seconds": timings, "stage_seconds": stages},
        indent=1))
    rows = [results_file.make_row(DISPLAY.get(m, m), seeds if m != "copy_source" else [0],
                             rs if m != "copy_source" else rs[:1],
                             results_file.paper_names(list(rs[0])),
                             columns={"training": f"{steps[m]:,} steps{chosen.get(m, '')}"
                                      if steps[m] else "none"})
            for m, rs in per_seed.items()]
    doc = results_file.new(key, command or f"tgir demo --dataset {dataset} --scale {scale}",
                      max(steps.values()), rows, seconds=line["seconds"],
                      stage_seconds=stages)
    results_file.write(doc, workdir / "results" / f"{key}.json")
    if results_path:
        results_file.write(doc, results_path)
    return line
