"""Inference settings for gallery embedding (issue 10): ``torch.no_grad`` (tgir's default) vs
``torch.inference_mode`` vs inference mode + channels_last memory format, same model, same
images, in one run; prints images/s and the ratios, and checks the embeddings agree.

    python bench/infer.py [--images 256] [--batch 64] [--encoders efficientnet_lite0 small_resnet]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from tgir.data.images import to_tensor_batch
from tgir.models import create_model

SIZES = {"efficientnet_lite0": 224, "small_resnet": 64}


def embed(model, images: np.ndarray, batch: int, mode: str) -> tuple[float, np.ndarray]:
    ctx = torch.no_grad if mode == "no_grad" else torch.inference_mode
    if mode == "channels_last":
        model = model.to(memory_format=torch.channels_last)
    out = []
    t = time.perf_counter()
    with ctx():
        for i in range(0, len(images), batch):
            x = to_tensor_batch(images[i:i + batch])
            if mode == "channels_last":
                x = x.contiguous(memory_format=torch.channels_last)
            out.append(model.embed_target(x).float().numpy())
    return len(images) / (time.perf_counter() - t), np.concatenate(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=256)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--encoders", nargs="+", default=list(SIZES))
    a = p.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for enc in a.encoders:
        size = SIZES[enc]
        torch.manual_seed(0)
        model = create_model("maaf", vocab_size=50, image_encoder=enc, embed_dim=256,
                             word_dim=256, levels=[-2, -1], blocks=1).eval()
        imgs = np.random.default_rng(0).integers(0, 255, (a.images, size, size, 3),
                                                 dtype=np.uint8)
        embed(model, imgs[:a.batch], a.batch, "no_grad")  # warm-up
        rates, ref = {}, None
        for mode in ("no_grad", "inference_mode", "channels_last"):
            rates[mode], e = embed(model, imgs, a.batch, mode)
            ref = e if ref is None else ref
            agree = float(np.abs(e - ref).max())
            print(f"MAAF {enc} @ {size}px, {mode:15s}: {rates[mode]:7.1f} images/s "
                  f"(x{rates[mode] / rates['no_grad']:.2f} no_grad), max |diff| {agree:.1e}")


if __name__ == "__main__":
    main()
