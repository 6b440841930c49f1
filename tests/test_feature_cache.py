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


def test_pooled_and_lower_part_caches_serve_the_attribute_and_joint_models(tmp_path):
    """AIHM caches its frozen backbone's pooled last map, the joint embedding (Sadeh et al.) the
    output of its never-trained lower blocks; both read back what a forward pass computes,
    and the joint key ignores the top blocks that train."""
    from tgir.models.aihm import AIHM
    from tgir.models.joint_embedding import JointEmbedding

    torch.manual_seed(0)
    imgs = _images(5, size=64)
    x = to_tensor_batch(imgs)
    aihm = AIHM({"colour": ["red", "blue"], "shape": ["circle", "square"]},
                image_encoder="small_resnet", image_encoder_cfg={"widths": [8, 16, 32]},
                freeze_backbone=True)
    joint = JointEmbedding(12, embed_dim=8, unfreeze_at=0)
    for model in (aihm, joint):
        spec = model.cache_spec(64)
        cache = DiskFeatureCache(tmp_path, spec.key)
        model.eval()
        assert cache.build(spec.extract, imgs, progress=False) == 5
        model.feature_cache = cache
        with torch.no_grad():
            direct = model.encode_image(x)
            model.train()
            cached = model.encode_image(x)
        assert cache.hits == 1 and torch.allclose(cached, direct, rtol=2e-3, atol=2e-3)
    assert DiskFeatureCache(tmp_path, aihm.cache_spec(64).key).dir != cache.dir
    key = joint.cache_spec(64).key
    with torch.no_grad():
        joint.top_params[0].add_(1.0)
    assert joint.cache_spec(64).key == key
    with torch.no_grad():
        next(joint.backbone.parameters()).add_(1e-3)  # the stem: a lower part
    assert joint.cache_spec(64).key != key
    assert AIHM({"c": ["a", "b"]}, image_encoder="small_resnet").cache_spec(64) is None
