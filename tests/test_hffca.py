"""hffca (Zhang et al.): shapes of each equation, normalisations, switches, the captioner."""

import pytest
import torch

from tgir.models import create_model
from tgir.models.hffca import CGPWeights, MCFDirection

VOCAB, D = 30, 32
ENC = {"widths": [8, 16, 32, 64]}  # 8x8 + 4x4 = 80 image tokens at 64 px


def _model(**kw):
    torch.manual_seed(0)
    return create_model("hffca", vocab_size=VOCAB, embed_dim=D, word_dim=16,
                        image_encoder_cfg=ENC, dropout=0.0, **kw)


def _batch(b=4):
    g = torch.Generator().manual_seed(1)
    return {"source": torch.rand(b, 3, 64, 64, generator=g),
            "target": torch.rand(b, 3, 64, 64, generator=g),
            "ids": torch.randint(2, VOCAB, (b, 6), generator=g),
            "lengths": torch.tensor([6, 3, 1, 4][:b]), "target_label": torch.arange(b)}


def test_mcf_shapes_and_softmax_over_the_other_modality():
    mcf = MCFDirection(D, 10)
    own, other = torch.randn(2, 10, D), torch.randn(2, 5, D)
    own_mask = torch.ones(2, 10, dtype=torch.bool)
    other_mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    out = mcf(own, other, own_mask, other_mask)
    assert out.shape == (2, 10, D)
    m = mcf.last_map  # (B, N, L)
    # eq. 5-6: each image position gets a convex mix of the words (weights sum to 1)
    assert torch.allclose(m.sum(2), torch.ones(2, 10), atol=1e-5)
    assert torch.all(m[0, :, 3:] == 0)  # padded words take no part
    # a padded word's feature has no influence on the output
    other2 = other.clone()
    other2[0, 3:] = 99.0
    assert torch.allclose(out[0], mcf(own, other2, own_mask, other_mask)[0], atol=1e-5)


def test_mcf_text_direction_ignores_padded_words():
    """eq. 4's W_r mixes rows of M_r1: a padded word row must not leak into real words."""
    torch.manual_seed(0)
    mcf = MCFDirection(D, 6)
    with torch.no_grad():
        mcf.W.add_(torch.randn(6, 6))  # a trained, non-identity W_r
    words, image = torch.randn(1, 6, D), torch.randn(1, 10, D)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0]], dtype=torch.bool)
    ones = torch.ones(1, 10, dtype=torch.bool)
    out = mcf(words, image, mask, ones)
    words2 = words.clone()
    words2[0, 4:] = 50.0
    assert torch.allclose(out, mcf(words2, image, mask, ones), atol=1e-5)
    assert torch.all(out[0, 4:] == 0)


def test_mcf_keeps_both_modalities_at_their_scale():
    """Issue 20: with softmax over the own positions a fused word became ~10x an image token."""
    torch.manual_seed(0)
    mr, mm = MCFDirection(D, 80), MCFDirection(D, 8)
    img, txt = torch.randn(2, 80, D) + 0.5, torch.randn(2, 8, D) + 0.5  # features share a mean
    ones_i, ones_t = torch.ones(2, 80, dtype=torch.bool), torch.ones(2, 8, dtype=torch.bool)
    new_r, new_m = mr(img, txt, ones_i, ones_t), mm(txt, img, ones_t, ones_i)
    ratio = new_m.norm(dim=-1).mean() / new_r.norm(dim=-1).mean()
    assert 0.5 < ratio < 2.0


def test_cgp_weights_positive_and_masked():
    cgp = CGPWeights(D)
    own, other = torch.randn(2, 7, D), torch.randn(2, 5, D)
    mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3], dtype=torch.bool)
    z = cgp(own, mask, other, torch.ones(2, 5, dtype=torch.bool))
    assert z.shape == (2, 7) and torch.all(z[mask] > 0) and torch.all(z[~mask] == 0)
    # eq. 14: "a weight distribution over the whole image features"
    assert torch.allclose(z.sum(1), torch.ones(2), atol=1e-5)
    zt = CGPWeights(D, cross=False)(own, mask, None, None)
    assert zt.shape == (2, 7) and torch.all(zt[mask] > 0)
    assert torch.allclose(zt.sum(1), torch.ones(2), atol=1e-5)


def test_cgp_tanh_not_saturated_at_init():
    """eq. 13 at init on unit-scale tokens (the block's LayerNorm-scale output)."""
    torch.manual_seed(0)
    d = 256
    cgp = CGPWeights(d)
    pre = []
    cgp.fc_self.register_forward_hook(lambda m, i, o: pre.append(o))
    cgp.fc_cross.register_forward_hook(lambda m, i, o: pre.append(o))
    own, other = torch.randn(4, 80, d) + 0.5, torch.randn(4, 10, d) + 0.5
    cgp(own, torch.ones(4, 80, dtype=torch.bool), other, torch.ones(4, 10, dtype=torch.bool))
    x = torch.cat([p.flatten() for p in pre]).detach()
    assert x.std() < 2.0 and (x.tanh().abs() > 0.99).float().mean() < 0.05


def test_cgp_query_starts_as_maaf_share():
    m = _model(mcf=False, cgp=True, rcc=False)
    assert torch.allclose(m.gamma.detach(), torch.tensor([2 / 3, 1 / 3]))


@pytest.mark.parametrize("mcf,cgp,rcc", [(m, c, r) for m in (0, 1) for c in (0, 1)
                                         for r in (0, 1)])
def test_all_ablation_rows_train(mcf, cgp, rcc):
    m = _model(mcf=bool(mcf), cgp=bool(cgp), rcc=bool(rcc))
    b = _batch()
    out = m.loss(b)
    assert torch.isfinite(out["loss"]) and ("l_rel" in out) == bool(rcc)
    out["loss"].backward()
    assert m.compose(b["source"], b["ids"], b["lengths"]).shape == (4, D)
    assert m.embed_target(b["target"]).shape == (4, D)


def test_all_modules_off_is_exactly_the_maaf_baseline():
    h = _model(mcf=False, cgp=False, rcc=False).eval()
    torch.manual_seed(0)
    maaf = create_model("maaf", vocab_size=VOCAB, embed_dim=D, word_dim=16,
                        image_encoder_cfg=ENC, dropout=0.0, levels=[-2, -1], blocks=1).eval()
    maaf.load_state_dict(h.state_dict())
    b = _batch()
    assert torch.equal(h.compose(b["source"], b["ids"], b["lengths"]),
                       maaf.compose(b["source"], b["ids"], b["lengths"]))
    assert torch.equal(h.embed_target(b["target"]), maaf.embed_target(b["target"]))
    assert torch.equal(h.loss(b)["loss"], maaf.loss(b)["loss"])


def test_captioner_overfits_one_batch():
    m = _model()
    b = _batch()
    with torch.no_grad():
        psi_t = torch.cat(m.target_tokens(b["target"]), 1)
        psi_r = torch.cat(m.target_tokens(b["source"]), 1)
    opt = torch.optim.Adam(m.captioner.parameters(), 3e-3)
    first = None
    for _ in range(60):
        loss = m.captioner.loss(psi_t, psi_r, b["ids"], b["lengths"])
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.3 * first


def test_saved_weights_load_into_a_fresh_model():
    a, b = _model(), _model()
    b.load_state_dict(a.state_dict())
    x = _batch()
    a.eval()
    b.eval()
    assert torch.equal(a.compose(x["source"], x["ids"], x["lengths"]),
                       b.compose(x["source"], x["ids"], x["lengths"]))


def test_ablate_command_runs_every_row(tiny_css2d, tmp_path, capsys):
    import json

    import yaml

    from tgir.cli import main

    cfg = tmp_path / "h.yaml"
    cfg.write_text(yaml.safe_dump({
        "data": {"name": "css2d", "root": str(tiny_css2d)},
        "model": {"name": "hffca", "embed_dim": 16, "word_dim": 8, "image_encoder_cfg": ENC},
        "train": {"steps": 2, "batch_size": 8, "log_every": 1}}))
    assert main(["ablate", str(cfg), "--out", str(tmp_path / "ab"), "--seeds", "0", "1",
                 "-q"]) == 0
    out = capsys.readouterr().out
    assert out.count("±") == 9 * 3 and "| hffca |" in out
    summary = json.loads((tmp_path / "ab" / "ablation.json").read_text())["summary"]
    assert list(summary) == ["baseline", "+RCC", "+CGP", "+CGP+RCC", "+MCF", "+MCF+RCC",
                             "+MCF+CGP", "hffca", "+CGP (level norm)"]
    from tgir import results

    doc = results.load(tmp_path / "ab" / "results.json")  # issue 18's schema
    assert [r["model"] for r in doc["rows"]] == list(summary)
    assert doc["rows"][0]["seeds"] == [0, 1] and doc["command"].startswith("tgir ablate")
    assert len(doc["rows"][0]["metrics"]["R@1"]["per_seed"]) == 2
    # --no-train: only finished runs are reported (seed 5 was never trained)
    assert main(["ablate", str(cfg), "--out", str(tmp_path / "ab"), "--seeds", "0", "1", "5",
                 "--no-train", "--rows", "baseline,hffca", "-q"]) == 0
    doc = results.load(tmp_path / "ab" / "results.json")
    assert [r["seeds"] for r in doc["rows"]] == [[0, 1], [0, 1]]
    assert not (tmp_path / "ab" / "baseline" / "seed5").exists()


def test_hffca_serves_through_the_searcher_and_http_api(tiny_css2d, tmp_path):
    from fastapi.testclient import TestClient

    from tgir import config
    from tgir.engine.train import train
    from tgir.search.searcher import Query, Searcher
    from tgir.search.server import create_app

    cfg = config.from_dict({
        "data": {"name": "css2d", "root": str(tiny_css2d)},
        "model": {"name": "hffca", "embed_dim": 16, "word_dim": 8, "image_encoder_cfg": ENC},
        "train": {"steps": 2, "batch_size": 8}})
    train(cfg, tmp_path / "run", progress=False)
    s = Searcher(tmp_path / "run", progress=False)
    first = s.index.items[0]["id"]
    hits = s.search(Query(item_id=first, text="add small red circle to top-left"), 5)
    assert len(hits) == 5 and first not in [h.id for h in hits]
    client = TestClient(create_app(s.index.path, tmp_path / "run"),
                        raise_server_exceptions=False)
    r = client.post("/search", data={"item_id": first, "text": "remove big blue square",
                                      "k": "3"})
    assert r.status_code == 200 and len(r.json()["results"]) == 3
    assert client.get("/health").json()["model"] == "hffca"


def test_every_ablation_row_can_be_named_in_rows():
    """`tgir ablate --rows` splits on commas, so no row name may hold one."""
    from tgir.ablation import ROWS

    names = [name for rows in ROWS.values() for name, _ in rows]
    assert names and all("," not in n for n in names)


def test_cgp_level_norm_starts_as_the_baseline():
    """cgp_norm=level with uniform CGP weights is exactly MAAF's resolution-wise pooling."""
    base = _model(mcf=False, cgp=False, rcc=False).eval()
    m = _model(mcf=False, cgp=True, rcc=False, cgp_norm="level").eval()
    m.load_state_dict(base.state_dict(), strict=False)
    for c in (m.cgp_r, m.cgp_m, m.cgp_t):  # constant pre-softplus: uniform weights
        torch.nn.init.zeros_(c.fc_z.weight)
    with torch.no_grad():
        m.gamma.copy_(torch.tensor([2 / 3, 1 / 3]))
    b = _batch()
    with torch.no_grad():
        q0 = base.compose(b["source"], b["ids"], b["lengths"])
        q1 = m.compose(b["source"], b["ids"], b["lengths"])
        t0, t1 = base.embed_target(b["target"]), m.embed_target(b["target"])
    assert torch.allclose(q0, q1, atol=1e-5) and torch.allclose(t0, t1, atol=1e-5)
