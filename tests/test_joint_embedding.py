"""Sadeh et al.'s joint embedding: each equation against a hand computation, the §4.1 word
preprocessing, training + calibration on a toy catalog, and refinement search end to end."""

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from tgir import TgirError, config
from tgir.data.catalog_words import analyze, build_vocabulary, display_names, stems
from tgir.data.types import ItemTextSplit
from tgir.engine.train import train
from tgir.models.joint_embedding import JointEmbedding, best_f1_thresholds, mbmr_loss, triplet_loss


def test_mbmr_equals_equations_1_to_4():
    torch.manual_seed(0)
    fi, ft = torch.randn(5, 8), torch.randn(5, 8)
    tau = 0.1
    s = [[float(fi[i] @ ft[j] / (fi[i].norm() * ft[j].norm())) for j in range(5)]
         for i in range(5)]  # eq. 1
    total = 0.0
    for i in range(5):
        p_t = math.exp(s[i][i] / tau) / sum(math.exp(s[i][k] / tau) for k in range(5))  # eq. 2
        p_i = math.exp(s[i][i] / tau) / sum(math.exp(s[k][i] / tau) for k in range(5))  # eq. 3
        total += -math.log(p_t) - math.log(p_i)  # eq. 4
    assert float(mbmr_loss(fi, ft, tau)) == pytest.approx(total / 5, rel=1e-5)


def test_triplet_loss_by_hand():
    fi = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    ft = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    # cos: s00=1, s01=.7071, s10=0, s11=.7071; margin .2
    s = np.array([[1, 1 / np.sqrt(2)], [0, 1 / np.sqrt(2)]])
    m = 0.2
    i2t = max(0, m - s[0, 0] + s[0, 1]) + max(0, m - s[1, 1] + s[1, 0])
    t2i = max(0, m - s[0, 0] + s[1, 0]) + max(0, m - s[1, 1] + s[0, 1])
    assert float(triplet_loss(fi, ft, m)) == pytest.approx((i2t + t2i) / 2, rel=1e-5)


def test_thresholds_maximise_f_score():
    probs = np.array([[0.9, 0.2], [0.7, 0.3], [0.4, 0.1], [0.3, 0.8], [0.1, 0.05]])
    labels = np.array([[1, 0], [1, 0], [0, 0], [1, 0], [0, 0]], dtype=bool)
    thr = best_f1_thresholds(probs, labels, grid=99)
    # word 0: positives at .9 .7 .3, negative at .4 -> thresholds in (.1, .3] give
    # F = 2*3/(4+3) = .857, in (.4, .7] give 2*2/(2+3) = .8: the best is <= .3
    pred = probs[:, 0] >= thr[0]
    tp = (pred & labels[:, 0]).sum()
    assert 2 * tp / (pred.sum() + 3) == pytest.approx(6 / 7)
    assert 0.1 < thr[0] <= 0.3
    assert thr[1] == 0.5  # never occurs: the neutral default


def _model(vocab=6, dim=4):
    m = JointEmbedding(vocab, embed_dim=dim, unfreeze_at=-1)
    with torch.no_grad():
        m.words.weight.zero_()
    return m.eval()


def test_equations_5_to_8_by_hand():
    m = _model()
    with torch.no_grad():
        m.thresholds[2], m.thresholds[3] = 0.4, 0.2
        m.words.weight[2] = torch.tensor([1.0, 0, 0, 0])
        m.words.weight[3] = torch.tensor([0, 1.0, 0, 0])
    f = torch.tensor([[1.0, 1.0, 0, 0]])
    p_hat = torch.zeros(1, 6)
    p_hat[0, 2], p_hat[0, 3] = 0.6, 0.1
    p = m.word_probs(f, p_hat, torch.tensor([2, 3]))[0].detach()
    pt2 = 1 / (1 + math.exp(-(0.6 - 0.4) / 0.4))  # eq. 5
    pt3 = 1 / (1 + math.exp(-(0.1 - 0.2) / 0.2))
    cos = 1 / math.sqrt(2)  # eq. 6
    assert float(p[0]) == pytest.approx((pt2 + cos) / 2, rel=1e-5)  # eq. 7
    assert float(p[1]) == pytest.approx((pt3 + cos) / 2, rel=1e-5)
    both = m.set_probability(f, p_hat, torch.tensor([2]), torch.tensor([3]))  # eq. 8
    assert float(both[0]) == pytest.approx(float(p[0]) * (1 - float(p[1])), rel=1e-5)
    assert float(m.set_probability(f, p_hat, torch.tensor([], dtype=torch.long),
                                   torch.tensor([], dtype=torch.long))[0]) == 1.0


def test_qa_saf_and_filter_orderings_on_a_constructed_catalog():
    """Query: an image like A, "+red". A looks like the query but is not red; B is like the
    query and red; C is red but unlike the query."""
    m = _model()
    e1, e2 = torch.tensor([1.0, 0, 0, 0]), torch.tensor([0, 1.0, 0, 0])
    with torch.no_grad():
        m.words.weight[2] = e2  # "red"
        m.thresholds[2] = 0.5
    f_a, f_b, f_c = e1, 0.7 * (e1 + e2), e2
    p_red = torch.tensor([0.05, 0.9, 0.95])
    gallery = torch.zeros(3, 4 + 6)
    gallery[:, :4] = torch.stack([f_a, f_b, f_c])
    gallery[:, 4 + 2] = p_red
    plus, none = torch.tensor([2]), torch.tensor([], dtype=torch.long)
    q = e1[None]
    qa = m.refine_scores(q, plus, none, gallery, "qa")  # q = e1 + e2 (eq. 9-10)
    assert torch.allclose(qa, torch.nn.functional.cosine_similarity(
        (e1 + e2)[None], gallery[:, :4]))
    saf = m.refine_scores(q, plus, none, gallery, "saf")  # visual x p_w (eq. 12)
    both = m.refine_scores(q, plus, none, gallery, "qa+saf")  # eq. 13
    assert int(saf.argmax()) == 1 and int(both.argmax()) == 1  # B: similar and red
    assert float(saf[2]) == pytest.approx(0.0, abs=1e-6)  # C is orthogonal to the query
    assert float(both[2]) > float(both[0])  # QA+SAF prefers red-but-different C over A
    words = torch.tensor([[0, 0, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0], [0, 0, 1, 0, 0, 0]]).bool()
    hard = m.refine_scores(q, plus, none, gallery, "filter", item_words=words)  # eq. 11
    assert float(hard[0]) == 0 and int(hard.argmax()) == 1
    minus = m.refine_scores(q, none, plus, gallery, "filter", item_words=words)
    assert float(minus[1]) == 0 and float(minus[2]) == 0 and float(minus[0]) == 1
    with pytest.raises(TgirError, match="unknown refinement method"):
        m.refine_scores(q, plus, none, gallery, "magic")


def test_catalog_word_preprocessing():
    words, surface = analyze(["A red floral dress with short sleeves",
                              "red dresses and a black bag", "running quickly"])
    assert words[0] == ["red", "floral", "dress", "short", "sleev"]
    assert "with" not in words[0] and "quickli" not in words[2]  # POS filter
    assert words[1][:2] == ["red", "dress"]  # stemmed: dresses -> dress
    vocab = build_vocabulary(words, min_count=2)
    assert vocab == ["dress", "red"]
    assert display_names(["sleev"], surface) == {"sleev": "sleeves"}
    assert stems("Red Dresses!") == ["red", "dress"]


COLORS = {"red": (220, 30, 30), "green": (30, 170, 30), "blue": (30, 60, 220)}


def toy_catalog(n=240, seed=0) -> ItemTextSplit:
    """Squares and circles in three colours, large or small, with their words."""
    rng = np.random.default_rng(seed)
    imgs, words = [], []
    for _ in range(n):
        c = str(rng.choice(list(COLORS)))
        big, square = bool(rng.random() < 0.5), bool(rng.random() < 0.5)
        im = Image.new("RGB", (64, 64), (245, 245, 245))
        from PIL import ImageDraw

        d = ImageDraw.Draw(im)
        w = 44 if big else 18
        x, y = int(rng.integers(2, 64 - w - 1)), int(rng.integers(2, 64 - w - 1))
        (d.rectangle if square else d.ellipse)([x, y, x + w, y + w], fill=COLORS[c])
        imgs.append(np.asarray(im))
        words.append([c, "larg" if big else "small", "squar" if square else "circl"])
    vocab = ["red", "green", "blue", "larg", "small", "squar", "circl"]
    return ItemTextSplit("toy", np.stack(imgs), words, [" ".join(w) for w in words], vocab,
                         {"larg": "large", "squar": "square", "circl": "circle"})


@pytest.mark.slow
def test_joint_embedding_trains_calibrates_and_refines(tmp_path):
    from fastapi.testclient import TestClient

    from tgir.eval.evaluate import evaluate_pairs
    from tgir.models.checkpoint import load_run
    from tgir.search.index import build_index
    from tgir.search.searcher import Query, Searcher
    from tgir.search.server import create_app

    cat = toy_catalog()
    cfg = config.from_dict({
        "data": {"name": "toy", "root": ".", "val_fraction": 0.2},
        "model": {"name": "joint", "embed_dim": 32, "unfreeze_at": 60, "tau": 0.1},
        "train": {"steps": 120, "batch_size": 32, "optimizer": "adam", "lr": 0.003,
                  "backbone_lr": 0.0003, "lr_decay_steps": 100, "lr_gamma": 0.5,
                  "log_every": 20, "ckpt_every": 1000}})
    run = tmp_path / "run"
    train(cfg, run, progress=False, data=cat)
    _, vocab, model = load_run(run)
    assert not torch.allclose(model.thresholds[2:], torch.full((7,), 0.5))  # calibrated
    m = evaluate_pairs(model, vocab, cat, ks=(1, 5))
    assert m["i2t R@5"] > 0.5, m  # 12 distinct texts: chance is about 0.4
    # index a folder catalog of the toy images, then refine: a red item "+blue -red"
    folder = tmp_path / "catalog"
    folder.mkdir()
    lines = []
    for i, im in enumerate(cat.images):
        Image.fromarray(im).save(folder / f"{i:03d}.png")
        lines.append(json.dumps({"file": f"{i:03d}.png", "id": f"i{i:03d}",
                                 "text": " ".join(cat.display.get(w, w) for w in cat.words[i])}))
    (folder / "catalog.jsonl").write_text("\n".join(lines))
    index = build_index(run, folder, tmp_path / "index", progress=False)
    s = Searcher(run, index_dir=index, progress=False)
    red = next(i for i, w in enumerate(cat.words) if "red" in w)
    for method in ("qa+saf", "qa", "saf", "filter"):
        hits = s.search(Query(item_id=f"i{red:03d}", plus=["blue"], minus=["red"],
                              method=method), k=5)
        assert len(hits) == 5 and f"i{red:03d}" not in [h.id for h in hits]
        if method in ("qa+saf", "filter"):
            blue = sum("blue" in h.text for h in hits)
            assert blue >= 4, (method, [h.text for h in hits])
    text_hits = s.search(Query(text="green squares"), k=5)
    assert sum("green" in h.text for h in text_hits) >= 4
    with pytest.raises(TgirError, match="unknown refinement word 'purpel'.*"):
        s.search(Query(item_id="i000", plus=["purpel"]))
    client = TestClient(create_app(index, run_dir=run))
    r = client.post("/search", json={"item_id": f"i{red:03d}", "plus": "blue", "minus": "red",
                                     "method": "filter", "k": 3})
    assert r.status_code == 200 and r.json()["query"]["method"] == "filter"
    bad = client.post("/search", json={"item_id": "i000", "plus": "crimson"})
    assert bad.status_code == 400 and "nearest vocabulary words" in bad.json()["detail"]
    assert client.post("/search", json={"item_id": "i000", "plus": "red",
                                        "method": "x"}).status_code == 422
    # Sadeh et al. Table 1 protocol on the toy catalog (colour pool only)
    from tgir.eval.refine import markdown_table, run_refine_benchmark

    res = run_refine_benchmark(model, vocab, cat, cat, per_category=20, k=5, oracle_steps=20)
    assert set(res["table"]) == {"color", "overall"} and res["queries"] == 20
    for m in ("saf", "qa", "qa+saf"):
        r = res["table"]["overall"][m]
        assert 0 <= r["T-nDCG"] <= 1 and 0 <= r["V-nDCG"] <= 1
        assert r["MM"] == pytest.approx(math.sqrt(r["V-nDCG"] * r["T-nDCG"]))
    assert res["table"]["overall"]["qa+saf"]["T-nDCG"] > 0.5  # the words are honoured
    assert "**" in markdown_table(res)


def test_ndcg_uses_the_upper_bound_idcg():
    from tgir.eval.refine import ndcg_at_k

    got = ndcg_at_k(np.array([[1.0, 0.0, 1.0], [0.5, 0.5, 0.5]]))
    idcg = 1 + 1 / np.log2(3) + 1 / np.log2(4)  # K items of relevance 1 (§6)
    assert got[0] == pytest.approx((1 + 0.5) / idcg)
    assert got[1] == pytest.approx(0.5)


def test_refinement_queries_follow_their_operation():
    from tgir.eval.refine import generate_queries

    cat = toy_catalog(60)
    pools = {"color": ["blue", "green", "red"], "size": ["larg", "small"], "empty": ["x"]}
    qs = generate_queries(cat, pools, per_category=40, seed=1)
    assert {q["category"] for q in qs} == {"color", "size"} and len(qs) == 80
    assert {q["op"] for q in qs} == {"add", "remove", "replace"}
    for q in qs:
        words = cat.words[q["item"]]
        assert all(w not in words and w in pools[q["category"]] for w in q["plus"])
        assert all(w in words for w in q["minus"])
        assert (q["op"] == "add") == (not q["minus"]) and (q["op"] == "remove") == (not q["plus"])


def test_resnet18_option_loads_a_torchvision_layout_state_dict(tmp_path):
    from tgir.models.encoders import ResNet18

    ref = ResNet18()
    state = dict(ref.state_dict())
    state["fc.weight"], state["fc.bias"] = torch.zeros(1000, 512), torch.zeros(1000)
    torch.save(state, tmp_path / "resnet18.pth")
    m = JointEmbedding(9, image_encoder="resnet18", embed_dim=8, unfreeze_at=0,
                       image_encoder_cfg={"weights_path": str(tmp_path / "resnet18.pth")})
    assert torch.equal(m.backbone.layer4[1].conv2.weight, ref.layer4[1].conv2.weight)
    m.schedule(0)  # the paper's two top residual blocks = layer4
    trainable = {n for n, p in m.backbone.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("layer4.") for n in trainable)
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(TgirError, match="not a torchvision ResNet-18"):
        ResNet18(str(tmp_path / "bad.pth"))
    with pytest.raises(TgirError, match="not found"):
        ResNet18(str(tmp_path / "none.pth"))
