"""HGAN building blocks (Zheng et al.): Algorithm 1, eq. 6-11 against direct computations."""

import math

import pytest
import torch

from tgir.models.gumbel_attention import (
    RegionScorer,
    attend,
    gumbel_topk,
    hinge_loss,
    pair_kl_loss,
    similarity_map,
    soft_attend,
)


def test_gumbel_topk_is_exactly_k_hot_and_skips_padding():
    torch.manual_seed(0)
    g = torch.randn(3, 4, 6, 7)
    for k in (1, 2, 4):
        a = gumbel_topk(g, k, temperature=0.5, noise=True)
        assert torch.equal(a.detach().sum(-1), torch.full((3, 4, 6), float(k)))
        assert set(a.detach().unique().tolist()) <= {0.0, 1.0}
    padded = g.clone()
    padded[..., 5:] = float("-inf")
    a = gumbel_topk(padded, 4)
    assert a.detach()[..., 5:].sum() == 0 and torch.equal(a.detach().sum(-1),
                                                           torch.full((3, 4, 6), 4.0))
    few = g[..., :2].clone()
    assert torch.equal(gumbel_topk(few, 4).detach().sum(-1), torch.full((3, 4, 6), 2.0))


def test_gumbel_topk_without_noise_is_deterministic_top_k():
    g = torch.tensor([[0.1, 0.9, 0.5, -0.2, 0.7]])
    a = gumbel_topk(g, 2, noise=False)
    assert a.detach().tolist() == [[0.0, 1.0, 0.0, 0.0, 1.0]]
    assert torch.equal(a, gumbel_topk(g, 2, noise=False))


def test_gradients_flow_through_the_relaxation():
    g = torch.randn(2, 5, requires_grad=True)
    a = gumbel_topk(g, 2, temperature=0.5)
    (a * torch.arange(5.0)).sum().backward()
    assert g.grad is not None and g.grad.abs().sum() > 0


def test_attend_fuses_the_selected_items_by_softmax():
    gamma = torch.tensor([1.0, 3.0, 2.0]).view(1, 1, 1, 3)
    items = torch.tensor([[10.0, 0.0], [0.0, 10.0], [5.0, 5.0]]).view(1, 3, 2)
    mask = gumbel_topk(gamma, 2, noise=False)
    fused = attend(gamma, mask, items)[0, 0, 0]
    w1, w2 = math.exp(3) / (math.exp(3) + math.exp(2)), math.exp(2) / (math.exp(3) + math.exp(2))
    assert torch.allclose(fused, w1 * items[0, 1] + w2 * items[0, 2])
    soft = soft_attend(gamma, items)[0, 0, 0]  # eq. 3: all three items
    ws = torch.softmax(torch.tensor([1.0, 3.0, 2.0]), 0)
    assert torch.allclose(soft, (ws[:, None] * items[0]).sum(0))


def test_similarity_map_and_region_score_shapes():
    v, t = torch.randn(2, 6, 8), torch.randn(3, 5, 8)
    mask = torch.ones(3, 5, dtype=torch.bool)
    mask[2, 3:] = False
    g = similarity_map(v, t, mask)
    assert g.shape == (2, 3, 6, 5) and torch.isinf(g[:, 2, :, 3:]).all()
    assert torch.allclose(g[1, 0, 2, 4], v[1, 2] @ t[0, 4])
    fused = attend(g, gumbel_topk(g, 2, noise=False), t)
    s = RegionScorer(8)(v[:, None], fused).detach()  # eq. 8
    assert s.shape == (2, 3) and float(s.min()) > 0 and float(s.max()) < 1


def test_hinge_loss_by_hand():
    s = torch.tensor([[0.9, 0.8], [0.3, 0.5]])
    m = 0.2
    want = (max(0, m - 0.9 + 0.8) + max(0, m - 0.5 + 0.3)  # negative sentences per image
            + max(0, m - 0.9 + 0.3) + max(0, m - 0.5 + 0.8)) / 2  # negative images
    assert float(hinge_loss(s, m)) == pytest.approx(want)
    same = torch.tensor([[True, True], [True, True]])  # one identity: no negatives at all
    assert float(hinge_loss(s, m, same)) == 0.0


def test_pair_kl_loss_by_hand():
    v = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    t = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    ids = torch.tensor([0, 1])
    total = 0.0
    for a, b in ((v, t), (t, v)):
        for i in range(2):
            z = [float(a[i] @ (b[j] / b[j].norm())) for j in range(2)]
            p = [math.exp(x) / sum(math.exp(y) for y in z) for x in z]
            q = [1.0 if ids[i] == ids[j] else 0.0 for j in range(2)]
            total += sum(p[j] * math.log(p[j] / (q[j] + 1e-8)) for j in range(2)) / 2
    assert float(pair_kl_loss(v, t, ids)) == pytest.approx(total, rel=1e-5)


def test_learned_scale_keeps_training_selections_close_to_evaluation():
    """Issue 21: with the printed algorithm (beta = 1) the noise drowns the l2-normalised
    row; HGAN's beta (4 at the start) keeps training and evaluation on the same regions."""
    from tgir.models.gumbel_attention import selection_overlap

    torch.manual_seed(0)
    gamma = torch.randn(64, 16)
    plain = selection_overlap(gamma, 2, scale=1.0)
    scaled = selection_overlap(gamma, 2, scale=4.0)
    assert plain < 0.35 and scaled > plain + 0.2, (plain, scaled)
    assert selection_overlap(gamma, 2, scale=1e4) > 0.99  # beta -> inf: noise-free top-k
