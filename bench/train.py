"""Training throughput (issue 10), all measured in one run on this machine.

1. MAAF steps/s with the image backbone in the loop vs on cached maps, same batches:
   ``in-loop``   the backbone trained (forward + backward through it, the paper's setting);
   ``frozen``    the backbone frozen, but run on every batch (forward only);
   ``cached``    the backbone frozen and its maps read from the on-disk feature cache
                 (``models/feature_cache.py``; the one-off build time is printed apart).
   Default: EfficientNet-Lite0 (ImageNet weights; tgir's default pretrained backbone),
   ResNet-18 (Sadeh et al.'s backbone) and ResNet-50 (the AIHM / HGAN / hffca / MAAF backbone;
   random weights, the same cost) at 224 px, MAAF over their 14x14 + 7x7 maps, batch 32, the
   tiny css2d benchmark resized. The ratio is (backbone forward + backward + MAAF) / MAAF
   alone, so it grows with the backbone's cost.
2. One process vs two DDP processes (torchrun, gloo) at the same global batch on css2d with the
   small ResNet: steps/s of each, and the largest gap between their logged loss curves (the
   same batches; they differ by per-process BatchNorm statistics and dropout masks).

    python bench/train.py [--steps 6] [--image-size 224]
                          [--encoders efficientnet_lite0 resnet18 resnet50]
                          [--skip-ddp] [--ddp-steps 60]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from tgir import config
from tgir.data import build, css2d
from tgir.data.text import Vocabulary
from tgir.engine import distributed
from tgir.engine.train import composed_batcher, make_optimizer
from tgir.models.checkpoint import build_model
from tgir.models.feature_cache import DiskFeatureCache


def _cfg(root: Path, frozen: bool, encoder: str, steps: int, dim: int = 256,
         blocks: int = 1) -> config.Config:
    return config.from_dict({
        "data": {"name": "css2d", "root": str(root)},
        "model": {"name": "maaf", "image_encoder": encoder, "embed_dim": dim, "word_dim": dim,
                  "levels": [-2, -1], "blocks": blocks, "freeze_backbone": frozen},
        "train": {"steps": steps, "batch_size": 32, "optimizer": "adam"}})


def steps_per_second(root: Path, image_size: int, mode: str, steps: int, encoder: str,
                     cache_dir: Path, dim: int = 256, blocks: int = 1) -> tuple[float, float]:
    """(steps/s, one-off cache build seconds) of ``mode`` over ``steps`` timed steps."""
    cfg = _cfg(root, mode != "in-loop", encoder, steps, dim, blocks)
    split = build("css2d", root, "train", image_size)
    vocab = Vocabulary.build(split.query_text)
    torch.manual_seed(0)
    model = build_model(cfg, len(vocab))
    build_s = 0.0
    if mode == "cached":
        t = time.time()
        spec = model.cache_spec(image_size)
        cache = DiskFeatureCache(cache_dir, spec.key)
        used = np.unique(np.concatenate([split.query_source, split.query_target]))
        model.eval()
        cache.build(spec.extract, split.images[used], progress=False)
        build_s = time.time() - t
        model.feature_cache = cache
    opt = make_optimizer(model, cfg.train)
    step = distributed.wrap(model, distributed.DistInfo(), torch.device("cpu"))
    make = composed_batcher(split, vocab, cfg.train, torch.device("cpu"))
    model.train()
    times = []
    for s in range(steps + 1):  # the first step warms up
        batch = make(np.random.default_rng([0, s]))
        t = time.time()
        loss = step(batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        if s:
            times.append(time.time() - t)
    return 1.0 / float(np.mean(times)), build_s


def ddp_compare(root: Path, steps: int, work: Path) -> dict:
    d = {"data": {"name": "css2d", "root": str(root), "val_fraction": 0.0},
         "model": {"name": "maaf", "embed_dim": 64, "word_dim": 32, "levels": [-1],
                   "blocks": 1, "image_encoder_cfg": {"widths": [16, 32, 64]}},
         "train": {"steps": steps, "batch_size": 32, "optimizer": "adam", "log_every": 5,
                   "ckpt_every": steps}}
    cfg_path = work / "ddp.yaml"
    config.dump(config.from_dict(d), cfg_path)
    out = {}
    for n in (1, 2):
        run = work / f"run{n}"
        env = {**os.environ, "TQDM_DISABLE": "1", "OMP_NUM_THREADS": str(2 // n)}
        cmd = ([sys.executable, "-m", "tgir", "train"] if n == 1 else
               [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={n}",
                "-m", "tgir", "train"])
        subprocess.run([*cmd, str(cfg_path), "--out", str(run), "-q"], check=True, env=env,
                       capture_output=True)
        summary = json.loads((run / "train_summary.json").read_text())
        with open(run / "log.csv") as f:
            losses = [float(r["loss"]) for r in csv.DictReader(f)]
        out[n] = {"steps/s": steps / summary["seconds"], "losses": losses}
    gap = max(abs(a - b) for a, b in zip(out[1]["losses"], out[2]["losses"], strict=True))
    return {"1 process steps/s": out[1]["steps/s"], "2 processes steps/s": out[2]["steps/s"],
            "ratio": out[2]["steps/s"] / out[1]["steps/s"], "max loss gap": gap,
            "losses 1": out[1]["losses"], "losses 2": out[2]["losses"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--encoders", nargs="+", default=["efficientnet_lite0", "resnet18",
                                                            "resnet50"])
    p.add_argument("--embed-dim", type=int, default=256,
                   help="MAAF width (Dodds et al.'s Fashion setting: 512)")
    p.add_argument("--blocks", type=int, default=1,
                   help="MAAF attention blocks (Dodds et al.'s Fashion setting: 2)")
    p.add_argument("--skip-ddp", action="store_true")
    p.add_argument("--ddp-steps", type=int, default=60)
    a = p.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs; MAAF embed {a.embed_dim}, {a.blocks} block(s), batch 32")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        root = css2d.generate(work / "css2d", "tiny", seed=0, progress=False)
        for encoder in a.encoders:
            rates = {}
            for mode in ("in-loop", "frozen", "cached"):
                rate, build_s = steps_per_second(root, a.image_size, mode, a.steps, encoder,
                                                 work / "cache", a.embed_dim, a.blocks)
                rates[mode] = rate
                extra = f" (cache built once in {build_s:.1f} s)" if mode == "cached" else ""
                print(f"MAAF {encoder} @ {a.image_size}px, {mode:8s}: {rate:6.2f} steps/s"
                      f"{extra}")
            print(f"{encoder}: cached vs in-loop {rates['cached'] / rates['in-loop']:.1f}x; "
                  f"cached vs frozen {rates['cached'] / rates['frozen']:.1f}x")
        if not a.skip_ddp:
            r = ddp_compare(root, a.ddp_steps, work)
            print(f"DDP css2d small ResNet, global batch 32, {a.ddp_steps} steps: 1 process "
                  f"{r['1 process steps/s']:.2f} steps/s, 2 processes "
                  f"{r['2 processes steps/s']:.2f} steps/s ({r['ratio']:.2f}x); loss curves "
                  f"(every 5 steps) differ by at most {r['max loss gap']:.3f}")
            print("  1 process :", " ".join(f"{x:.3f}" for x in r["losses 1"]))
            print("  2 processes:", " ".join(f"{x:.3f}" for x in r["losses 2"]))


if __name__ == "__main__":
    main()
