"""Where HGAN's local levels win or lose (issue 21): each level alone, the fusion, the selection.

HGAN (Zheng et al., MM 2020) ranks every image by the sentence cosine and re-scores the best
``rerank`` with s = s_sentence + sum_l w_l s_l (eq. 8 per level; the weights w_l are chosen on
validation, ``HGAN.calibrate_levels``). For a trained run this reports, on its validation
split (the one the weights were chosen on) and on the test split:

- ``sentence``, ``word``, ``phrase``: each level's score alone over the same candidates;
- ``fused (chosen w)``: the model's own ranking (the evaluator's);
- ``fused (w = X)``: the fusion with both levels at one weight of the grid, to show how
  sensitive the result is to the choice (a diagnosis only: nothing is chosen on test);
- the selection (Algorithm 1): the learned inverse temperature beta per level and direction,
  and the overlap of training-time (noisy) selections with the evaluation (noise-free) ones
  on matched pairs, against the overlap of a random selection (k / n).

    python -m tgir.eval.hgan_diagnosis RUN_DIR ... [--captions 400] [--results OUT]
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import torch

from tgir.data import build
from tgir.data.images import to_tensor_batch
from tgir.data.types import TextImageSplit
from tgir.engine.device import pick_device
from tgir.engine.train import split_train_val
from tgir.eval.metrics import cmc_and_map
from tgir.models.checkpoint import load_run
from tgir.models.gumbel_attention import gumbel_topk, similarity_map
from tgir.models.hgan import HGAN

FUSION_GRID = (0.25, 1.0, 4.0)


@torch.no_grad()
def level_parts(model, split: TextImageSplit, rerank: int = 50, batch: int = 64
                ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """The sentence cosine over every image (C, N), each caption's ``rerank`` candidates
    (C, K) and each enabled local level's score on them (C, K): the pieces of
    ``evaluate.text_image_scores``."""
    model.eval()
    dev = next(model.parameters()).device
    imgs = [model.encode_image(to_tensor_batch(split.images[i:i + batch]).to(dev))
            for i in range(0, len(split.images), batch)]
    img = {k: torch.cat([x[k] for x in imgs]) for k in imgs[0]}
    glob, cands, loc = [], [], {lv: [] for lv in model.levels}
    for c in range(0, split.num_queries, batch):
        txt = model.encode_texts(split.captions[c:c + batch])
        g = model.global_scores(img, txt).T
        cand = torch.topk(g, min(rerank, g.shape[1]), dim=1).indices
        glob.append(g.cpu())
        cands.append(cand.cpu())
        for lv in model.levels:
            rows = [model.local_scores({k: v[cand[j]] for k, v in img.items()},
                                       {k: v[j:j + 1] for k, v in txt.items()}, lv)[:, 0]
                    for j in range(len(cand))]
            loc[lv].append(torch.stack(rows).cpu())
    return (torch.cat(glob).numpy(), torch.cat(cands).numpy(),
            {lv: torch.cat(v).numpy() for lv, v in loc.items()})


def rank_with(glob: np.ndarray, cand: np.ndarray, cand_scores: np.ndarray) -> np.ndarray:
    """Full (C, N) scores: the candidates by ``cand_scores`` ahead of the rest (sentence
    order), as the evaluator ranks them."""
    full = glob - 1e3
    np.put_along_axis(full, cand, cand_scores, axis=1)
    return full


def rankings(model, split: TextImageSplit, rerank: int = 50) -> dict[str, dict[str, float]]:
    glob, cand, loc = level_parts(model, split, rerank)
    g_c = np.take_along_axis(glob, cand, axis=1)
    rel = split.caption_labels[:, None] == split.labels[None, :]
    w = {lv: float(model.level_weight[list(model.grids).index(lv)]) for lv in model.levels}
    out = {"sentence": cmc_and_map(glob, rel)}
    for lv, s in loc.items():
        out[lv] = cmc_and_map(rank_with(glob, cand, s), rel)
    if loc:
        out["fused (chosen w)"] = cmc_and_map(
            rank_with(glob, cand, g_c + sum(w[lv] * s for lv, s in loc.items())), rel)
        for x in FUSION_GRID:
            out[f"fused (w = {x:g})"] = cmc_and_map(
                rank_with(glob, cand, g_c + sum(x * s for s in loc.values())), rel)
    return out


@torch.no_grad()
def selection_overlap(model, split: TextImageSplit, pairs: int = 128, draws: int = 4,
                      seed: int = 0) -> dict[str, dict[str, float]]:
    """Per level and direction: beta, k, n and the mean |train selection & eval selection| / k
    on matched (image, caption) pairs, over ``draws`` noise draws; ``random`` is k / n."""
    if model.attention == "soft" or not model.levels:
        return {}
    model.eval()
    dev = next(model.parameters()).device
    rng = np.random.default_rng(seed)
    caps = rng.choice(split.num_queries, size=min(pairs, split.num_queries), replace=False)
    imgs = np.asarray(split.caption_image)[caps]  # each caption's own image
    img = model.encode_image(to_tensor_batch(split.images[imgs]).to(dev))
    txt = model.encode_texts([split.captions[c] for c in caps])
    gen = torch.Generator(device=dev).manual_seed(seed)
    out = {}
    for lv in model.levels:
        g = similarity_map(model.gamma_v[lv](img[lv]), model.gamma_t[lv](txt[lv]),
                           txt[f"{lv}_mask"])
        g = torch.diagonal(g, dim1=0, dim2=1).permute(2, 0, 1)  # matched pairs (P, n, m)
        for d, rows, k in (("i2t", g, model.k1), ("t2i", g.transpose(1, 2), model.k2)):
            k = 1 if model.attention == "max" else k
            valid = torch.isfinite(rows)
            if d == "t2i":  # padded words: no row to select for
                keep = valid.any(-1)
                rows = rows.nan_to_num(neginf=0.0)
            beta = model.log_beta[f"{lv}_{d}"].exp()
            ev = gumbel_topk(rows, k, model.temperature, noise=False, scale=beta) > 0.5
            ov = []
            for _ in range(draws):
                tr = gumbel_topk(rows, k, model.temperature, noise=True, generator=gen,
                                 scale=beta) > 0.5
                hit = (tr & ev).sum(-1).float() / ev.sum(-1).clamp(min=1).float()
                ov.append(hit[keep].mean() if d == "t2i" else hit.mean())
            n = (valid.sum(-1).float().mean() if d == "i2t" else float(rows.shape[-1]))
            out[f"{lv} {d}"] = {"beta": float(beta), "k": k, "n": float(n),
                                "overlap": float(torch.stack(ov).mean()),
                                "random": min(1.0, k / float(n))}
    return out


def caption_subset(split: TextImageSplit, n: int | None, seed: int = 0) -> TextImageSplit:
    """``n`` captions drawn at random (all images stay in the gallery); all when ``n`` is
    None or not smaller."""
    if not n or split.num_queries <= n:
        return split
    keep = np.sort(np.random.default_rng(seed).choice(split.num_queries, n, replace=False))
    return dataclasses.replace(split, captions=[split.captions[i] for i in keep],
                               caption_image=np.asarray(split.caption_image)[keep])


def diagnose_run(run_dir: str | Path, captions: int = 400, device: str = "auto",
                 test_captions: int | None = None) -> dict:
    cfg, _, model = load_run(Path(run_dir), pick_device(device))
    if not isinstance(model, HGAN):
        raise SystemExit(f"{run_dir}: not an HGAN run (model {cfg.model['name']!r})")
    test = caption_subset(build(cfg.data.name, cfg.data.root, cfg.data.eval_split,
                                cfg.data.image_size), test_captions)
    full = build(cfg.data.name, cfg.data.root, cfg.data.train_split, cfg.data.image_size)
    _, val = split_train_val(full, cfg.data.val_fraction, cfg.train.seed)
    if val is not None and val.num_queries > captions:  # as calibrate_levels scores it
        val = dataclasses.replace(val, captions=list(val.captions[:captions]),
                                  caption_image=val.caption_image[:captions])
    chosen = {lv: float(model.level_weight[list(model.grids).index(lv)]) for lv in model.levels}
    return {"run": str(run_dir), "seed": cfg.train.seed, "steps": cfg.train.steps,
            "benchmark": cfg.data.name, "attention": model.attention,
            "levels": model.levels, "chosen weights": chosen,
            "test captions": test.num_queries,
            "validation": rankings(model, val, cfg.eval.rerank) if val is not None else {},
            "test": rankings(model, test, cfg.eval.rerank),
            "selection": selection_overlap(model, test)}


NAMES = {"R@1": "Rank-1", "R@5": "Rank-5", "mAP": "mAP"}  # cmc_and_map key -> column


def results_doc(results: list[dict], labels: list[str], command: str) -> dict:
    """One row per (model label, split, ranking); the runs of one label are its seeds."""
    from tgir import results as results_file

    rows = []
    for label in dict.fromkeys(labels):
        idx = [i for i, lb in enumerate(labels) if lb == label]
        for split in ("validation", "test"):
            what = (f"test ({results[idx[0]]['test captions']:,} captions)" if split == "test"
                    else "validation")
            for how in results[idx[0]][split]:
                rows.append(results_file.make_row(
                    f"{label}: {how}", [results[i]["seed"] for i in idx],
                    [results[i][split][how] for i in idx], NAMES,
                    columns={"split": what}))
    return results_file.new(results[0]["benchmark"], command,
                            max(r["steps"] for r in results), rows)


def main(argv: list[str] | None = None) -> None:
    import json
    import shlex
    import sys

    from tgir import results as results_file

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run_dirs", nargs="+", help="trained HGAN run folders")
    p.add_argument("--label", action="append", default=None,
                   help="row label per run (repeat; default: the attention kind)")
    p.add_argument("--captions", type=int, default=400,
                   help="validation captions scored (the trainer's train.val_queries)")
    p.add_argument("--test-captions", type=int, default=None,
                   help="score this many test captions, drawn at random (default all; the "
                        "gallery is always every test image)")
    p.add_argument("--device", default="auto")
    p.add_argument("--results", help="write a results file")
    p.add_argument("--json", help="also write every figure (selection included) here")
    a = p.parse_args(argv)
    results = []
    for r in a.run_dirs:
        results.append(diagnose_run(r, a.captions, a.device, a.test_captions))
        print(f"{r}: done", file=sys.stderr, flush=True)
    labels = a.label or [r["attention"] for r in results]
    if len(labels) != len(results):
        raise SystemExit(f"{len(labels)} --label for {len(results)} runs")
    print("| run | weights | split | ranking | Rank-1 | mAP |\n|---|---|---|---|---|---|")
    for r in results:
        for split in ("validation", "test"):
            for how, m in r[split].items():
                print(f"| {r['run']} | {r['chosen weights']} | {split} | {how} | "
                      f"{100 * m['R@1']:.1f} | {100 * m['mAP']:.1f} |")
        for key, s in r["selection"].items():
            print(f"  selection {key}: beta {s['beta']:.2f}, k {s['k']} of {s['n']:.1f}, "
                  f"train/eval overlap {s['overlap']:.2f} (random {s['random']:.2f})")
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))
    if a.results:
        cmd = "python -m tgir.eval.hgan_diagnosis " + shlex.join(sys.argv[1:] if argv is None
                                                                 else argv)
        print(f"wrote {results_file.write(results_doc(results, labels, cmd), a.results)}")


if __name__ == "__main__":
    main()
