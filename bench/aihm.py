"""AIHM retrieval cost (Dong et al.): the matching head scores every (attribute set, image) pair.

Three ways to answer one attribute query over a gallery of G images, timed in the same run:

- ``recompute``: the image side (backbone + visual embedding + FC_V) run for every image at
  query time, then the head (what a naive pair scorer does); timed on a slice, scaled to G;
- ``pairwise``: image side precomputed, the head called one pair at a time (a Python loop);
  timed on a slice, scaled to G;
- ``batched`` (tgir): image side precomputed once (it is what the index stores), the head run
  over all G pairs in chunks (``AIHM.match``).

Prints milliseconds per query for each and the speed-ups over ``batched``; also the
dot-product (attribute-classifier) cost on the same gallery for scale. Random weights: the
cost does not depend on training.

    python bench/aihm.py [--gallery 10000] [--queries 5] [--levels 2] [--image-size 128]
"""

from __future__ import annotations

import argparse
import time

import torch

from tgir.engine.device import pick_device
from tgir.models.aihm import AIHM

SCHEMA = {"gender": ["man", "woman", "person", "boy", "girl"],
          "skin": ["none", "light", "medium-light", "medium", "medium-dark", "dark"],
          "hair": ["none", "red hair", "curly hair", "white hair", "bald", "blond hair"],
          "role": [f"role{i}" for i in range(100)]}


def _ms(fn, repeat: int = 1) -> float:
    t = time.perf_counter()
    for _ in range(repeat):
        fn()
    return 1000 * (time.perf_counter() - t) / repeat


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--gallery", type=int, default=10_000)
    p.add_argument("--queries", type=int, default=5)
    p.add_argument("--levels", type=int, default=2, choices=[2, 4])
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--slice", type=int, default=64, help="images timed for the slow paths")
    p.add_argument("--device", default="auto")
    a = p.parse_args()
    dev = pick_device(a.device)
    torch.manual_seed(0)
    m = AIHM(SCHEMA, levels=a.levels).to(dev).eval()
    q = m.embed_attributes(torch.tensor([[1, 4, 0, 7]] * a.queries, device=dev)).detach()
    with torch.no_grad():
        imgs = torch.rand(a.slice, 3, a.image_size, a.image_size, device=dev)
        t_embed = _ms(lambda: m.embed_target(imgs)) / a.slice  # per image
        g = torch.randn(a.gallery, q.shape[1], device=dev)
        m.match(q[:1], g[:256])  # warm-up
        t_batched = _ms(lambda: m.match(q, g)) / a.queries
        one = q[:1]
        t_pair = _ms(lambda: [m.pair_logits(one, g[i:i + 1]) for i in range(a.slice)]
                     ) / a.slice * a.gallery
        t_recompute = t_embed * a.gallery + t_batched
        gal = torch.randn(a.gallery, 1 + sum(len(v) for v in SCHEMA.values()), device=dev)
        qd = torch.randn(a.queries, gal.shape[1], device=dev)
        t_dot = _ms(lambda: torch.topk(qd @ gal.T, 10), repeat=10) / a.queries
    print(f"AIHM {a.levels}-layer, gallery {a.gallery:,}, {a.queries} queries, {dev}, "
          f"image {a.image_size}px")
    print(f"  batched head, precomputed image side (tgir): {t_batched:10.1f} ms/query")
    print(f"  pair-at-a-time head, precomputed image side:  {t_pair:10.1f} ms/query "
          f"({t_pair / t_batched:.1f}x slower)")
    print(f"  image side recomputed per query:              {t_recompute:10.1f} ms/query "
          f"({t_recompute / t_batched:.1f}x slower)")
    print(f"  dot product (attribute classifier), for scale: {t_dot:9.2f} ms/query "
          f"({t_batched / t_dot:.0f}x faster than the head)")


if __name__ == "__main__":
    main()
