"""The composed-retrieval evaluator (TIRG protocol, used by Dodds et al. on CSS).

The gallery (every image of the split) is embedded once in batches, every query is composed,
similarity is the dot product of the (normalised) embeddings, the query's source image is
excluded from its ranking, exact top-k, and a hit is the target's label among the top K
(duplicates of the target scene count). Reports R@1, R@5, R@10, R@50, R@100.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch

from tgir.data import build
from tgir.data.text import Vocabulary
from tgir.data.types import AttributeSplit, ComposedSplit, ItemTextSplit, TextImageSplit
from tgir.engine.device import pick_device
from tgir.engine.features import embed_attribute_sets, embed_images, embed_queries, score_all
from tgir.eval.metrics import (
    DEFAULT_KS,
    cmc_and_map,
    precision_at_k,
    recall_at_k,
    topk_excluding,
)
from tgir.models.checkpoint import load_run


def rank(query_emb: np.ndarray, gallery_emb: np.ndarray, exclude: np.ndarray, k: int,
         chunk: int = 2048) -> np.ndarray:
    """Top-k gallery indices per query (best first), ``exclude[i]`` (a gallery index or -1)
    removed from row i. Similarities in chunks of queries, so memory stays O(chunk x
    gallery); multi-threaded ``torch.topk`` (bench/eval.py: ~4x NumPy's argpartition)."""
    g = torch.from_numpy(np.ascontiguousarray(gallery_emb, dtype=np.float32))
    k = min(k, len(g))
    out = []
    for i in range(0, len(query_emb), chunk):
        s = torch.from_numpy(np.ascontiguousarray(query_emb[i:i + chunk],
                                                  dtype=np.float32)) @ g.T
        e = torch.from_numpy(np.asarray(exclude[i:i + chunk], dtype=np.int64))
        rows = torch.nonzero(e >= 0).squeeze(1)
        s[rows, e[rows]] = -float("inf")
        out.append(torch.topk(s, k, dim=1).indices.numpy())
    return np.concatenate(out) if out else np.zeros((0, k), dtype=np.int64)


def evaluate_attribute_split(model: torch.nn.Module, split: AttributeSplit,
                             ks: tuple[int, ...] = (1, 5, 10), progress: bool = False
                             ) -> dict[str, float]:
    """Attribute-query protocol (Dong et al.): every distinct attribute combination of the split
    is a query, the gallery is every image of the split, an image is relevant when its
    attribute vector equals the query's; R@1/5/10 (CMC) and mAP."""
    g = embed_images(model, split.images, progress=progress)
    queries = split.queries()
    scores = score_all(model, embed_attribute_sets(model, queries), g, progress=progress)
    return cmc_and_map(scores, split.relevance(queries), ks)


@torch.no_grad()
def evaluate_pairs(model: torch.nn.Module, vocab: Vocabulary, split: ItemTextSplit,
                   ks: tuple[int, ...] = (1, 5, 20), batch: int = 256) -> dict[str, float]:
    """Sadeh et al. Figure 4 protocol: top-K accuracy of image -> text and text -> image over the
    split (the matching item ranked within the top K by cosine similarity)."""
    from tgir.data.images import to_tensor_batch

    model.eval()
    dev = next(model.parameters()).device
    f_img, f_txt = [], []
    for i in range(0, len(split.images), batch):
        idx = np.arange(i, min(i + batch, len(split.images)))
        f_img.append(model.encode_image(to_tensor_batch(split.images[idx]).to(dev)).cpu())
        ids, _ = split.word_batch(vocab.stoi, idx)
        f_txt.append(model.encode_words(torch.from_numpy(ids).to(dev)).cpu())
    a = torch.nn.functional.normalize(torch.cat(f_img), dim=1)
    b = torch.nn.functional.normalize(torch.cat(f_txt), dim=1)
    s = (a @ b.T).numpy()
    diag = np.diag(s)
    rank_i2t = (s > diag[:, None]).sum(1)  # texts scored above the true one
    rank_t2i = (s > diag[None, :]).sum(0)
    out = {}
    for k in ks:
        out[f"i2t R@{k}"] = float(np.mean(rank_i2t < k))
        out[f"t2i R@{k}"] = float(np.mean(rank_t2i < k))
    return out


@torch.no_grad()
def text_image_scores(model, split: TextImageSplit, rerank: int = 50, batch: int = 64
                      ) -> np.ndarray:
    """Caption x image scores (C, N), Zheng et al. at gallery scale: the sentence-level cosine
    ranks every image; the ``rerank`` best of each caption are then scored with the full
    hierarchical similarity (global + word + phrase) and moved ahead of the rest in that
    order. ``rerank >= N`` is the exact full computation."""
    from tgir.data.images import to_tensor_batch

    model.eval()
    dev = next(model.parameters()).device
    imgs = []
    for i in range(0, len(split.images), batch):
        imgs.append(model.encode_image(to_tensor_batch(split.images[i:i + batch]).to(dev)))
    img = {k: torch.cat([x[k] for x in imgs]) for k in imgs[0]}
    n = len(split.images)
    out = np.empty((split.num_queries, n), dtype=np.float32)
    for c in range(0, split.num_queries, batch):
        txt = model.encode_texts(split.captions[c:c + batch])
        g = model.global_scores(img, txt).T  # (b, N)
        k = min(rerank, n)
        cand = torch.topk(g, k, dim=1).indices  # (b, k)
        full = g - 1e3  # everything outside the candidates ranks after them
        for j in range(len(cand)):
            sub = {key: v[cand[j]] for key, v in img.items()}
            one = {key: v[j:j + 1] for key, v in txt.items()}
            full[j, cand[j]] = model.scores(sub, one)[:, 0]
        out[c:c + len(cand)] = full.cpu().numpy()
    return out


def evaluate_text_image(model, split: TextImageSplit, ks: tuple[int, ...] = (1, 5, 10),
                        rerank: int = 50) -> dict[str, float]:
    """Zheng et al. protocol: text -> image Rank-1/5/10, mAP and mINP with identity relevance, and
    the same for image -> text on the same score matrix. A split with ``meta["protocol"] ==
    "class"`` (CUB / Flowers) is scored by ``class_protocol`` instead."""
    s = text_image_scores(model, split, rerank)
    if split.meta.get("protocol") == "class":
        return class_protocol(s, split)
    rel = split.caption_labels[:, None] == split.labels[None, :]
    t2i = cmc_and_map(s, rel, ks)
    i2t = cmc_and_map(s.T, rel.T, ks)
    return {**{f"t2i {k}": v for k, v in t2i.items()}, **{f"i2t {k}": v for k, v in i2t.items()}}


def class_protocol(scores: np.ndarray, split: TextImageSplit, k: int = 50) -> dict[str, float]:
    """Reed et al.'s fine-grained protocol (CUB / Flowers): a class is queried by the mean score
    of its captions (for dot-product models, the score of the mean caption embedding);
    text -> image AP@50 is the share of its ``k`` best images that belong to it, averaged over
    classes; image -> text R@1 is the share of images whose best class is their own."""
    classes = np.unique(split.labels)
    cap = split.caption_labels
    class_scores = np.stack([scores[cap == c].mean(0) for c in classes])  # (K, N)
    rel = classes[:, None] == split.labels[None, :]
    best = classes[class_scores.argmax(0)]
    return {f"t2i AP@{k}": float(precision_at_k(class_scores, rel, k).mean()),
            "i2t R@1": float(np.mean(best == split.labels))}


def evaluate_split(model: torch.nn.Module, vocab: Vocabulary,
                   split: ComposedSplit | AttributeSplit | ItemTextSplit | TextImageSplit,
                   ks: tuple[int, ...] = DEFAULT_KS,
                   gallery: str = "all", progress: bool = False, keep_reference: bool = False,
                   rerank: int = 50) -> dict[str, float]:
    """R@K of ``model`` on ``split``. ``gallery="all"``: every image of the split (test
    protocol); ``"queries"``: only the images the queries use (cheap validation, and VAL's
    query-union gallery). The reference image is removed from its own ranking unless
    ``keep_reference``. A split with categories (FashionIQ) adds per-category R@10 / R@50 over
    each category's gallery and their means. An attribute split is scored by its own protocol
    (``evaluate_attribute_split``), text -> image splits by ``evaluate_text_image``."""
    if split.task == "attributes":
        return evaluate_attribute_split(model, split, progress=progress)
    if split.task == "pairs":
        return evaluate_pairs(model, vocab, split)
    if split.task == "text":
        return evaluate_text_image(model, split, rerank=rerank)
    if gallery == "queries":
        used = np.unique(np.concatenate([split.query_source, split.query_target]))
    else:
        used = np.arange(len(split.images))
    g_all = embed_images(model, split.images[used], progress=progress)
    q = embed_queries(model, vocab, split.images[split.query_source], split.query_text,
                      progress=progress)

    pos = np.full(len(split.images), -1, dtype=np.int64)  # split image -> row of g_all
    pos[used] = np.arange(len(used))

    def recall(gallery_idx: np.ndarray, rows: np.ndarray, ks: tuple[int, ...] = ks
               ) -> dict[str, float]:
        remap = np.full(len(split.images), -1, dtype=np.int64)
        remap[gallery_idx] = np.arange(len(gallery_idx))
        exclude = (np.full(len(rows), -1, dtype=np.int64) if keep_reference
                   else remap[split.query_source[rows]])
        k = min(max(ks), len(gallery_idx))
        top = rank(q[rows], g_all[pos[gallery_idx]], exclude, k)
        ranked = split.labels[gallery_idx][top]
        ranked[top == exclude[:, None]] = -1  # a removed reference never counts as a hit
        return recall_at_k(ranked, split.labels[split.query_target[rows]], ks,
                           complete=k == len(gallery_idx))

    out = recall(used, np.arange(split.num_queries))
    novel = novel_queries(split)
    if gallery == "all" and novel is not None:
        # CSS / css2d: generalisation to compositions never seen in training, R@1 apart for
        # the queries whose source or target shows a held-out (colour, shape) pair
        for name, rows in (("held-out pairs", np.flatnonzero(novel)),
                           ("seen pairs", np.flatnonzero(~novel))):
            if len(rows):
                out[f"R@1 ({name})"] = recall(used, rows, (1,))["R@1"]
    cats = split.meta.get("category_images")
    if gallery == "all" and cats and "query_category" in split.meta:
        qcat = np.asarray(split.meta["query_category"])
        per = {c: recall(np.asarray(idx), np.flatnonzero(qcat == c), (10, 50))
               for c, idx in cats.items() if (qcat == c).any()}
        if per:  # complete rankings: R@10 and R@50 exist even for galleries under 50
            for c, r in per.items():
                out.update({f"{c} {k}": v for k, v in r.items()})
            for k in ("R@10", "R@50"):
                out[f"avg {k}"] = float(np.mean([r[k] for r in per.values()]))
            out["(R10+R50)/2"] = (out["avg R@10"] + out["avg R@50"]) / 2
    return out


def novel_queries(split: ComposedSplit) -> np.ndarray | None:
    """bool (Q,): the query's source or target scene holds an object whose (colour, shape)
    is a held-out composition (css2d's ``params.holdout``, CSS's test-only pairs); None for a
    split without scene objects."""
    objects = split.meta.get("objects")
    holdout = {tuple(x) for x in (split.meta.get("params") or {}).get("holdout", [])}
    if objects is None or not holdout:
        return None
    img_novel = np.array([any((str(o["color"]), str(o["shape"])) in holdout for o in objs)
                          for objs in objects], dtype=bool)
    return img_novel[split.query_source] | img_novel[split.query_target]


def copy_source_baseline(split: ComposedSplit, ks: tuple[int, ...] = DEFAULT_KS
                         ) -> dict[str, float]:
    """Rank the gallery by raw-pixel distance to the reference image, text ignored."""
    x = split.images.reshape(len(split.images), -1).astype(np.float32) / 255.0
    sq = (x * x).sum(1)
    src = split.query_source
    out = []
    for i in range(0, len(src), 1024):
        s = src[i:i + 1024]
        neg_d = 2 * x[s] @ x.T - sq[None, :] - sq[s][:, None]
        out.append(topk_excluding(neg_d, max(ks), s))
    top = np.concatenate(out)
    return recall_at_k(split.labels[top], split.labels[split.query_target], ks)


def evaluate_run(run_dir: str | Path, split: str | None = None, progress: bool = True,
                 device: str = "auto", strict: bool = False,
                 overrides: list[str] | None = None) -> dict:
    """Evaluate a trained run on its config's eval split; writes ``RUN_DIR/metrics.json``.
    ``overrides`` (``eval.*``, ``data.root``, ``data.eval_split`` as ``key=value``) change the
    protocol or the data location, never the model."""
    from tgir import TgirError, config

    run = Path(run_dir)
    cfg, vocab, model = load_run(run, pick_device(device))
    for item in overrides or []:
        key = item.split("=", 1)[0].strip()
        if not (key.startswith("eval.") or key in ("data.root", "data.eval_split")):
            raise TgirError(f"tgir eval --set can change eval.*, data.root and "
                            f"data.eval_split, not {key!r} (the model is trained)")
    if overrides:
        cfg = config.from_dict(config.apply_overrides(cfg.to_dict(), overrides))
    name = split or cfg.data.eval_split
    data = build(cfg.data.name, cfg.data.root, name, cfg.data.image_size,
                 strict=strict or cfg.data.strict)
    metrics = evaluate_split(model, vocab, data, progress=progress,
                             gallery=cfg.eval.gallery, keep_reference=cfg.eval.keep_reference,
                             rerank=cfg.eval.rerank)
    result = {"dataset": cfg.data.name, "split": name, "model": cfg.model["name"],
              "queries": data.num_queries, "gallery": len(data.images),
              "protocol": {"gallery": cfg.eval.gallery,
                           "keep_reference": cfg.eval.keep_reference}, "metrics": metrics}
    if data.task == "composed" and data.num_queries > 1:
        from tgir.eval.sensitivity import swap_sensitivity

        result["sensitivity"] = swap_sensitivity(model, vocab, data)
    tmp = run / ".metrics.json.tmp"
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(run / "metrics.json")
    return result


def format_table(rows: dict[str, dict[str, float]]) -> str:
    """A plain text table: one row per method, one column per metric."""
    def order(k: str) -> tuple:
        m = re.match(r"(?:\w+ )?R@(\d+)$", k)
        return (0, int(m.group(1)), k) if m else (1, 0, k)

    cols = sorted({k for r in rows.values() for k in r}, key=order)
    width = max([len(n) for n in rows] + [6])
    lines = [f"{'method':<{width}}  " + "  ".join(f"{c:>6}" for c in cols)]
    for name, r in rows.items():
        lines.append(f"{name:<{width}}  " + "  ".join(
            f"{100 * r[c]:6.1f}" if c in r else f"{'-':>6}" for c in cols))
    return "\n".join(lines)
