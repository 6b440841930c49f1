"""The on-disk cache of a frozen backbone's maps (issue 10): exactly the backbone's maps (to
fp16), keyed by backbone weights + input size + image checksum, reused, and used by the trainer
when the backbone is frozen."""

import numpy as np
import torch

from tgir import config
from tgir.data.images import to_tensor_batch
from tgir.models.encoders import create_image_encoder
from tgir.models.feature_cache import DiskFeatureCache, backbone_key

from .conftest import tiny_train_config


def _images(n, seed=0, size=32):
    return np.random.default_rng(seed).integers(0, 255, (n, size, size, 3), dtype=np.uint8)


def test_cache_returns_the_backbone_maps_and_is_reused(tmp_path):
    torch.manual_seed(0)
    bb = create_image_encoder("small_resnet", widths=[8, 16, 32]).eval()
    imgs = _images(10)
    key = backbone_key(bb, 32)
    cache = DiskFeatureCache(tmp_path, key)
    assert cache.build(bb, imgs, batch_size=4, progress=False) == 10
    x = to_tensor_batch(imgs[[3, 7, 1]])
    with torch.no_grad():
        ref = bb(x)
    got = cache.maps(x)
    assert len(got) == len(ref)
    for a, b in zip(got, ref, strict=True):
        assert a.shape == b.shape and torch.allclose(a, b, rtol=2e-3, atol=2e-3)
    # reuse: nothing recomputed; new images go to a new shard; a reopened cache sees all
    assert DiskFeatureCache(tmp_path, key).build(bb, imgs, progress=False) == 0
    more = np.concatenate([imgs, _images(3, seed=1)])
    assert cache.build(bb, more, progress=False) == 3
    assert len(DiskFeatureCache(tmp_path, key)) == 13
    assert len(list((tmp_path / key).glob("shard-*"))) == 2
    # an image the cache does not hold (one pixel changed) is a miss, not a wrong answer
    changed = imgs[:1].copy()
    changed[0, 0, 0, 0] ^= 1
    assert cache.maps(to_tensor_batch(changed)) is None


def test_key_changes_with_weights_and_input_size():
    torch.manual_seed(0)
    bb = create_image_encoder("small_resnet", widths=[8, 16, 32])
    k = backbone_key(bb, 32)
    assert backbone_key(bb, 64) != k
    with torch.no_grad():
        next(bb.parameters()).add_(1e-3)
    assert backbone_key(bb, 32) != k


def test_trainer_uses_the_cache_for_a_frozen_backbone(tiny_css2d, tmp_path):
    from tgir.engine.train import train

    d = tiny_train_config(tiny_css2d, steps=3)
    d["model"]["freeze_backbone"] = True
    d["train"]["feature_cache"] = str(tmp_path / "cache")
    s_cached = train(config.from_dict(d), tmp_path / "a", progress=False)
    shards = list((tmp_path / "cache").glob("*/shard-*"))
    assert len(shards) == 1 and (shards[0] / "level0.f16").stat().st_size > 0
    # every training forward (source + target, 3 steps) came from the cache
    assert s_cached["feature_cache"]["hits"] == 6 and s_cached["feature_cache"]["misses"] == 0
    d["train"]["feature_cache"] = "off"
    s_plain = train(config.from_dict(d), tmp_path / "b", progress=False)
    # the same steps on the same batches: losses agree up to the fp16 storage
    assert abs(s_cached["final_loss"] - s_plain["final_loss"]) < 2e-2
    assert not (tmp_path / "b" / "cache").exists()
