"""Where a trained AIHM loses to the attribute classifier (issue 22): its head or its features.

AIHM (Dong et al.) scores an (attribute set, image) pair with a matching head over fused
cross-modal embeddings (Table 7), but it also trains a softmax classifier per attribute on
the image (Figures 1-4, SCE). Ranking the same gallery by the product of *its own* attribute
classifiers' probabilities (what the ``attr_classifier`` baseline does with its own) separates
the two causes of a loss:

- ``head``: the matching head's logit (what AIHM retrieves by);
- ``own classifiers``: sum over attributes of log p(value | image) from AIHM's visual
  classifiers (same features, no head);
- each on the zero-shot test combinations and on training combinations (seen by the head
  as positives), so the head's seen-vs-unseen gap is a number.

    python -m tgir.eval.aihm_diagnosis RUN_DIR ... [--train-queries 192] [--results OUT]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from tgir.data import build
from tgir.data.images import to_tensor_batch
from tgir.data.types import AttributeSplit
from tgir.engine.device import pick_device
from tgir.engine.features import embed_attribute_sets, embed_images, score_all
from tgir.eval.metrics import cmc_and_map
from tgir.models.aihm import AIHM
from tgir.models.checkpoint import load_run
from tgir.models.tasks import capabilities


def _label(cfg) -> str:
    m = cfg.model
    if m["name"] == "aihm":
        return f"AIHM {m.get('levels', 2)}-layer"
    return "attribute classifier" if m["name"] == "attr_classifier" else m["name"]


@torch.no_grad()
def image_side(model, split: AttributeSplit, batch_size: int = 256
               ) -> tuple[np.ndarray, list[np.ndarray]]:
    """AIHM's gallery vectors (``embed_target``) and each attribute's log p(value | image),
    from one backbone pass over the split's images."""
    model.eval()
    dev = next(model.parameters()).device
    g, logp = [], []
    for i in range(0, len(split.images), batch_size):
        x, v_logits = model.image_side(to_tensor_batch(split.images[i:i + batch_size]).to(dev))
        g.append(x.float().cpu())
        logp.append([torch.log_softmax(lg, 1).float().cpu() for lg in v_logits])
    per_attr = [torch.cat([b[j] for b in logp]).numpy() for j in range(len(logp[0]))]
    return torch.cat(g).numpy(), per_attr


def own_scores(per_attr: list[np.ndarray], queries: np.ndarray) -> np.ndarray:
    """(Q, N): sum_i log p_i(q_i | image), the product of AIHM's own classifiers."""
    q = np.asarray(queries)
    return sum(per_attr[j][:, q[:, j]].T for j in range(q.shape[1]))


def own_classifier_scores(model, split: AttributeSplit, queries: np.ndarray,
                          batch_size: int = 256) -> np.ndarray:
    """(Q, N): sum_i log p_i(q_i | image) from AIHM's visual attribute classifiers."""
    return own_scores(image_side(model, split, batch_size)[1], queries)


def diagnose_split(model, split: AttributeSplit, queries: np.ndarray | None = None
                   ) -> dict[str, dict[str, float]]:
    """mAP / R@K of the head and of AIHM's own classifiers on ``split`` (every image is in
    the gallery; ``queries`` default to all its combinations); for the attribute-classifier
    baseline, its own ranking."""
    queries = split.queries() if queries is None else queries
    rel = split.relevance(queries)
    q = embed_attribute_sets(model, queries)
    if not isinstance(model, AIHM):  # the attr_classifier baseline: its log-product
        return {"classifier": cmc_and_map(score_all(model, q, embed_images(model, split.images)),
                                          rel)}
    g, per_attr = image_side(model, split)
    return {"head": cmc_and_map(score_all(model, q, g), rel),
            "own classifiers": cmc_and_map(own_scores(per_attr, queries), rel)}


def diagnose_run(run_dir: str | Path, train_queries: int = 192, seed: int = 0,
                 device: str = "auto") -> dict:
    """Both rankings on the test split and on a sample of training combinations (with a
    gallery of the same size as test drawn from the training images, the sampled combinations'
    images included)."""
    cfg, _, model = load_run(Path(run_dir), pick_device(device))
    if capabilities(model).task != "attributes":
        raise SystemExit(f"{run_dir}: not an attribute model (model {cfg.model['name']!r})")
    test = build(cfg.data.name, cfg.data.root, cfg.data.eval_split, cfg.data.image_size)
    train = build(cfg.data.name, cfg.data.root, cfg.data.train_split, cfg.data.image_size)
    rng = np.random.default_rng(seed)
    combos = train.queries()
    pick = combos[rng.choice(len(combos), size=min(train_queries, len(combos)), replace=False)]
    is_rel = (train.attributes[:, None, :] == pick[None]).all(-1).any(1)
    others = rng.permutation(np.flatnonzero(~is_rel))
    n_more = max(0, len(test.images) - int(is_rel.sum()))
    gallery = train.subset(np.sort(np.concatenate([np.flatnonzero(is_rel), others[:n_more]])))
    out = {"run": str(run_dir), "label": _label(cfg), "seed": cfg.train.seed,
           "steps": cfg.train.steps, "benchmark": cfg.data.name,
           "test (unseen combinations)": diagnose_split(model, test),
           "train (seen combinations)": diagnose_split(model, gallery, pick),
           "gallery": {"test": len(test.images), "train sample": len(gallery.images)}}
    return out


SPLITS = {"test (unseen combinations)": "unseen (test)",
          "train (seen combinations)": "seen (train)"}
NAMES = {"R@1": "R@1", "R@10": "R@10", "mAP": "mAP"}


def results_doc(results: list[dict], command: str) -> dict:
    """One results-file row per (model, ranking, combinations), the runs of a model as seeds."""
    from tgir import results as results_file

    labels, seeds = [r["label"] for r in results], [r["seed"] for r in results]
    rows = []
    for label in dict.fromkeys(labels):
        idx = [i for i, lb in enumerate(labels) if lb == label]
        for split, column in SPLITS.items():
            for how in results[idx[0]][split]:
                rows.append(results_file.make_row(
                    f"{label}: {how}", [seeds[i] for i in idx],
                    [results[i][split][how] for i in idx], NAMES,
                    columns={"combinations": column}))
    return results_file.new(results[0]["benchmark"], command,
                            max(r["steps"] for r in results), rows)


def main(argv: list[str] | None = None) -> None:
    import shlex
    import sys

    from tgir import results as results_file

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run_dirs", nargs="+", help="trained AIHM (or attr_classifier) run folders")
    p.add_argument("--train-queries", type=int, default=192)
    p.add_argument("--device", default="auto")
    p.add_argument("--results", help="write a results file (rows: model: ranking; the runs "
                                     "of one model are its seeds)")
    a = p.parse_args(argv)
    results = [diagnose_run(r, a.train_queries, device=a.device) for r in a.run_dirs]
    print("| run | combinations | ranking | R@1 | R@10 | mAP |\n|---|---|---|---|---|---|")
    for r in results:
        for split in SPLITS:
            for how, m in r[split].items():
                print(f"| {r['run']} | {split} | {how} | {100 * m['R@1']:.1f} | "
                      f"{100 * m['R@10']:.1f} | {100 * m['mAP']:.1f} |")
    if a.results:
        cmd = "python -m tgir.eval.aihm_diagnosis " + shlex.join(sys.argv[1:] if argv is None
                                                                 else argv)
        doc = results_doc(results, cmd)
        print(f"wrote {results_file.write(doc, a.results)}")


if __name__ == "__main__":
    main()
