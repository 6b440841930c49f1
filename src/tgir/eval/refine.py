"""Sadeh et al. §6: the multimodal refinement benchmark and its metrics (V-nDCG, T-nDCG, MM).

Queries: a random test catalog item plus desired / undesired words from a pool of common
attributes of one category, by one of three operations: add (w+ the item lacks), remove (w- the
item has) or replace (both). Each method ranks the test catalog (the query item left out):
SAF (eq. 12), QA (eq. 9-10) and QA+SAF (eq. 13).

Metrics over the top K (eq. 14): DCG_K = sum rel_i / log2(i + 1), normalised by the paper's
upper-bound IDCG (K items of relevance 1).
- V-nDCG: rel = cosine between the query and the result in a purely visual model (the visual
  oracle) trained with a triplet loss on the train catalog, where the positive of an image is
  another view of the same item (a flipped, re-cropped copy: our catalog has one image per
  item) and the negatives are the other items' images;
- T-nDCG: rel = the share of the query's criteria the result's metadata meets (w+ present,
  w- absent);
- MM = sqrt(V-nDCG x T-nDCG), per row of the table from the row's means (Table 1).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tgir import TgirError
from tgir.data.catalog_words import stem
from tgir.data.images import to_tensor_batch
from tgir.data.types import ItemTextSplit
from tgir.models.joint_embedding import triplet_loss
from tgir.models.tasks import capabilities

COLOR_WORDS = ("white", "black", "red", "blue", "green", "yellow", "orange", "purple", "pink",
               "brown", "grey", "gray", "gold", "silver", "seagreen", "cyan", "magenta")
METHODS = ("saf", "qa", "qa+saf")


def ndcg_at_k(rel: np.ndarray) -> np.ndarray:
    """nDCG_K (eq. 14) of relevance rows (Q, K), IDCG = K items of relevance 1 (§6)."""
    k = rel.shape[1]
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    return (rel * disc).sum(1) / disc.sum()


def attribute_pools(split: ItemTextSplit, categories: list[list[str]]) -> dict[str, list[str]]:
    """Pools of common attribute words per category, from the vocabulary: colour names, the
    catalog's top-level category names ("type") and its second-level ones ("subject")."""
    vocab = set(split.vocabulary)

    def words(names) -> set[str]:
        out = set()
        for n in names:
            for part in n.replace("_", " ").replace("-", " ").split():
                if part != "and" and stem(part) in vocab:
                    out.add(stem(part))
        return out

    top = words(c.split("/")[0] for cats in categories for c in cats)
    second = words(c.split("/")[1] for cats in categories for c in cats if "/" in c) - top
    color = {stem(c) for c in COLOR_WORDS} & vocab
    return {"color": sorted(color), "type": sorted(top - color),
            "subject": sorted(second - color)}


def generate_queries(split: ItemTextSplit, pools: dict[str, list[str]], per_category: int,
                     seed: int = 0) -> list[dict]:
    """``per_category`` queries per pool: an item and an add / remove / replace request."""
    rng = np.random.default_rng(seed)
    out = []
    for cat, pool in pools.items():
        if len(pool) < 2:
            continue
        made, tries = 0, 0
        while made < per_category and tries < 50 * per_category:
            tries += 1
            i = int(rng.integers(len(split.images)))
            has = [w for w in pool if w in split.words[i]]
            lacks = [w for w in pool if w not in split.words[i]]
            ops = [op for op, ok in (("add", lacks), ("remove", has),
                                     ("replace", has and lacks)) if ok]
            if not ops:
                continue
            op = ops[int(rng.integers(len(ops)))]
            plus = [str(rng.choice(lacks))] if op in ("add", "replace") else []
            minus = [str(rng.choice(has))] if op in ("remove", "replace") else []
            out.append({"item": i, "category": cat, "op": op, "plus": plus, "minus": minus})
            made += 1
    return out


class VisualOracle(torch.nn.Module):
    """The purely visual search model of §6 that defines V-nDCG's relevance: a projection of
    the frozen pretrained backbone's feature, trained with a triplet loss (two views of one
    item are positives, other items negatives)."""

    def __init__(self, feat_dim: int = 1280, dim: int = 128):
        super().__init__()
        self.proj = torch.nn.Sequential(torch.nn.Linear(feat_dim, 512), torch.nn.ReLU(),
                                        torch.nn.Linear(512, dim))

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.proj(feats), dim=-1)


def _views(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A second view of each image: horizontally flipped and re-cropped to 85-100 %."""
    out = np.empty_like(images)
    n, h, w, _ = images.shape
    from PIL import Image

    for i in range(n):
        s = float(rng.uniform(0.85, 1.0))
        ch, cw = int(h * s), int(w * s)
        y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        crop = Image.fromarray(images[i, y:y + ch, x:x + cw, ::-1].copy())
        out[i] = np.asarray(crop.resize((w, h), Image.BILINEAR))
    return out


@torch.no_grad()
def backbone_features(images: np.ndarray, batch: int = 128) -> torch.Tensor:
    """Pooled features of the pretrained EfficientNet-Lite0 (the oracle's frozen backbone)."""
    from tgir.models.encoders import EfficientNetLite0

    net = EfficientNetLite0().eval()
    return torch.cat([net(to_tensor_batch(images[i:i + batch]))[-1].mean(dim=(2, 3))
                      for i in range(0, len(images), batch)])


def train_oracle(images: np.ndarray, steps: int = 400, batch: int = 64, margin: float = 0.2,
                 seed: int = 0) -> VisualOracle:
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    a, b = backbone_features(images), backbone_features(_views(images, rng))
    oracle = VisualOracle(a.shape[1])
    opt = torch.optim.Adam(oracle.parameters(), lr=1e-3)
    with torch.enable_grad():
        _fit(oracle, opt, a, b, steps, batch, margin, rng)
    return oracle.eval()


def _fit(oracle, opt, a, b, steps, batch, margin, rng) -> None:
    """Two views of one item are the positive pair, the batch's other items the negatives."""
    for _ in range(steps):
        i = torch.from_numpy(rng.choice(len(a), size=min(batch, len(a)), replace=False))
        loss = triplet_loss(oracle(a[i]), oracle(b[i]), margin)
        opt.zero_grad()
        loss.backward()
        opt.step()


@torch.no_grad()
def run_refine_benchmark(model, vocab, train: ItemTextSplit, test: ItemTextSplit,
                         per_category: int = 200, k: int = 10, seed: int = 0,
                         oracle_steps: int = 400) -> dict:
    """Sadeh et al. Table 1 on ``test``: rows per attribute category + overall, columns V-nDCG /
    T-nDCG / MM per method."""
    if not capabilities(model).refine:
        raise TgirError("the refinement benchmark needs the joint embedding (model.name: joint)")
    model.eval()
    dev = next(model.parameters()).device
    pools = attribute_pools(test, test.meta.get("categories") or [[]])
    queries = generate_queries(test, pools, per_category, seed)
    if not queries:
        raise TgirError("no refinement query could be built: the attribute pools are empty")
    gallery = torch.cat([model.embed_target(to_tensor_batch(test.images[i:i + 128]).to(dev))
                         for i in range(0, len(test.images), 128)])
    oracle = train_oracle(train.images, steps=oracle_steps, seed=seed)
    vis = oracle(backbone_features(test.images))  # (N, d), l2-normalised
    has = np.zeros((len(test.images), len(vocab)), dtype=bool)
    for i, ws in enumerate(test.words):
        has[i, [vocab.stoi[w] for w in ws]] = True
    rows: dict[str, dict[str, list[float]]] = {}
    for q in queries:
        i = q["item"]
        plus = torch.tensor([vocab.stoi[w] for w in q["plus"]], dtype=torch.long, device=dev)
        minus = torch.tensor([vocab.stoi[w] for w in q["minus"]], dtype=torch.long, device=dev)
        f_q = gallery[i:i + 1, :model.embed_dim]
        for m in METHODS:
            s = model.refine_scores(f_q, plus, minus, gallery, m).clone()
            s[i] = -float("inf")  # the query item itself is not a result
            top = torch.topk(s, k).indices.cpu().numpy()
            v_rel = (vis[top] @ vis[i]).clamp(min=0).numpy()
            met = [has[top, vocab.stoi[w]] for w in q["plus"]] + \
                  [~has[top, vocab.stoi[w]] for w in q["minus"]]
            t_rel = np.mean(met, axis=0)
            for row in (q["category"], "overall"):
                d = rows.setdefault(row, {})
                d.setdefault(f"{m} V", []).append(float(ndcg_at_k(v_rel[None])[0]))
                d.setdefault(f"{m} T", []).append(float(ndcg_at_k(t_rel[None])[0]))
    table = {}
    for row, d in rows.items():
        table[row] = {"queries": len(d[f"{METHODS[0]} V"])}
        for m in METHODS:
            v, t = float(np.mean(d[f"{m} V"])), float(np.mean(d[f"{m} T"]))
            table[row][m] = {"V-nDCG": v, "T-nDCG": t, "MM": float(np.sqrt(v * t))}
    return {"k": k, "per_category": per_category, "seed": seed, "pools": pools,
            "queries": len(queries), "table": table}


def markdown_table(result: dict) -> str:
    """The result as a table like Sadeh et al. Table 1 (best MM per row in bold)."""
    head = "| | " + " | ".join(f"{m.upper()} V-nDCG | {m.upper()} T-nDCG | {m.upper()} MM"
                               for m in METHODS) + " |"
    lines = [head, "|---" * (1 + 3 * len(METHODS)) + "|"]
    order = [r for r in result["table"] if r != "overall"] + ["overall"]
    for row in order:
        r = result["table"][row]
        best = max(METHODS, key=lambda m: r[m]["MM"])
        cells = []
        for m in METHODS:
            mm = f"{r[m]['MM']:.3f}"
            cells += [f"{r[m]['V-nDCG']:.3f}", f"{r[m]['T-nDCG']:.3f}",
                      f"**{mm}**" if m == best else mm]
        lines.append(f"| {row} ({r['queries']}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def results_rows(result: dict, seed: int) -> list[dict]:
    """Rows for a results file (``tgir.results``): one per attribute category then overall,
    columns ``SAF V-nDCG`` ... ``QA+SAF MM`` (nDCG values in [0, 1], not percent)."""
    order = [r for r in result["table"] if r != "overall"] + ["overall"]
    rows = []
    for row in order:
        r = result["table"][row]
        metrics = {}
        for m in METHODS:
            for k in ("V-nDCG", "T-nDCG", "MM"):
                v = float(r[m][k])
                metrics[f"{m.upper()} {k}"] = {"mean": v, "std": 0.0, "per_seed": [v]}
        rows.append({"model": f"{row} ({r['queries']})", "seeds": [seed], "metrics": metrics})
    return rows


def attribute_examples(model, vocab, split: ItemTextSplit, path: Path, n: int = 8,
                       top: int = 6, seed: int = 0) -> Path:
    """Figure 3: catalog images with their top-``top`` words by p_w(I) (eq. 7)."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    idx = rng.choice(len(split.images), size=min(n, len(split.images)), replace=False)
    dev = next(model.parameters()).device
    with torch.no_grad():
        f = model.encode_image(to_tensor_batch(split.images[idx]).to(dev))
        ids = torch.arange(2, len(vocab), device=dev)
        p = model.word_probs(f, model.attribute_probs(f), ids).cpu()
    cell, textw = 128, 170
    canvas = Image.new("RGB", (len(idx) * (cell + textw) // 2 + 10,
                               2 * (cell + 16) + 10), (255, 255, 255))
    d = ImageDraw.Draw(canvas)
    for j, i in enumerate(idx):
        x = 5 + (j % (len(idx) // 2 or 1)) * (cell + textw)
        y = 5 + (j // (len(idx) // 2 or 1)) * (cell + 16)
        canvas.paste(Image.fromarray(split.images[i]).resize((cell, cell)), (x, y))
        best = torch.topk(p[j], min(top, p.shape[1]))
        for r, (v, w) in enumerate(zip(best.values.tolist(), best.indices.tolist(),
                                       strict=True)):
            word = vocab.itos[w + 2]
            d.text((x + cell + 6, y + 4 + 18 * r),
                   f"{split.display.get(word, word)} {v:.2f}", fill=(0, 0, 0))
    canvas.save(path)
    return Path(path)


def save_result(result: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "refine.json").write_text(json.dumps(result, indent=1))
    (out / "refine.md").write_text(markdown_table(result) + "\n")
