"""AIHM (Dong et al.) and the attribute-query path: layers against the supplementary's tables,
the balanced tree, the zero-shot split, mAP on a hand-computed case, training, search."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from tgir import TgirError, config
from tgir.data.types import AttributeSplit
from tgir.engine.train import split_train_val, train
from tgir.eval.evaluate import evaluate_attribute_split
from tgir.eval.metrics import average_precision, cmc_and_map
from tgir.models.aihm import AIHM, ConvFusion, balanced_tree
from tgir.models.attr_classifier import AttributeClassifier

SCHEMA = {"gender": ["man", "person", "woman"], "skin": ["dark", "light", "none"],
          "hair": ["none", "red hair"], "role": ["cook", "farmer", "none", "pilot", "artist"]}


def _model(levels=2, **kw):
    return AIHM(SCHEMA, levels=levels, image_encoder="small_resnet", **kw)


def test_balanced_tree_covers_every_attribute_once():
    groups, parents = balanced_tree(4)
    assert groups == [[0], [1], [2], [3]] and parents == [[0, 1], [2, 3]]
    groups, parents = balanced_tree(10)  # k ~ N_attr / 4
    assert [len(g) for g in groups] == [3, 3, 2, 2]
    assert sorted(a for g in groups for a in g) == list(range(10))
    assert parents == [[0, 1], [2, 3]]
    groups, parents = balanced_tree(3)
    assert groups == [[0], [1], [2]] and sorted(sum(parents, [])) == [0, 1, 2]


def test_conv_fusion_is_channel_conv_then_merge():
    f = ConvFusion(8, 5, 3)
    x = torch.randn(2, 3, 8)
    y = f(x)
    assert y.shape == (2, 5)
    # by hand: 1x1 conv over channels of each of the 3 inputs, then weighted sum over them
    per = torch.einsum("bnc,oc->bno", x, f.channels.weight[:, :, 0]) + f.channels.bias
    want = torch.tanh(torch.einsum("bno,n->bo", per, f.merge.weight[0, :, 0]) + f.merge.bias)
    assert torch.allclose(y, want, atol=1e-6)


@pytest.mark.parametrize("levels", [2, 4])
def test_layer_shapes_follow_the_tables(levels):
    m = _model(levels)
    feat = m.backbone.out_channels[-1]
    v, t = m.visual, m.textual
    assert v.fc1[0].weight.shape == (1024, feat)  # Table 2/3: FC1 2048 x Dim_glo (1024)
    if levels == 2:  # Table 2: FC1,i 2048 x 1024, FC2,i 1024 x Dim_loc (512)
        assert len(v.local) == 4
        assert v.local[0][0].weight.shape == (1024, feat)
        assert v.local[0][2].weight.shape == (512, 1024)
        assert t.fusion1.channels.weight.shape[:2] == (1024, 512)  # Conv[Dim_loc, Dim_glo]
        assert t.fusion1.merge.weight.shape[:2] == (1, 4)  # Conv[N_attr, 1]
    else:  # Table 3: FC1,i (2) 2048 x 1024, FC2,i (4) 1024 x 512, FC3,i 512 x Dim_loc
        assert len(v.fc1_i) == 2 and len(v.fc2_i) == 4 and len(v.fc3_i) == 4
        assert v.fc2_i[0][0].weight.shape == (512, 1024)
        assert v.fc3_i[0].weight.shape == (512, 512)
        assert len(t.fusion1_i) == 4 and len(t.fusion2_i) == 2  # Table 5
        assert t.fusion3.channels.weight.shape[:2] == (1024, 512)
        assert t.fusion3.merge.weight.shape[:2] == (1, 2)
    assert [c.weight.shape[0] for c in v.cls] == [3, 3, 2, 5]  # Cls_i: Dim_loc x N_Attr_i
    assert t.fc[0].weight.shape == (512, 50)  # Table 4 FC1 on 50-d GloVe (not 300-d)
    assert t.fc[2].weight.shape == (1024, 512) and t.fc[4].weight.shape == (512, 1024)
    assert m.fc_v_glo.weight.shape == (512, 1024) and m.fc_t_loc.weight.shape == (512, 512)
    assert m.fusion_cm.merge.weight.shape[:2] == (1, 4)  # FusionCM: Conv[N_attr, 1]
    assert m.fusion_cl.merge.weight.shape[:2] == (1, 2)  # FusionCL: Conv[2, 1]
    assert [m.head[i].weight.shape for i in (0, 2, 4)] == [(256, 512), (128, 256), (1, 128)]
    x = torch.rand(3, 3, 32, 32)
    a = torch.tensor([[0, 1, 0, 1], [2, 0, 1, 3], [1, 2, 0, 4]])
    x_glo, x_loc, logits = v(m.encode_image(x))
    assert x_glo.shape == (3, 1024) and x_loc.shape == (3, 4, 512)
    z_glo, z_loc, tlogits = t(a)
    assert z_glo.shape == (3, 1024) and z_loc.shape == (3, 4, 512)
    assert [lg.shape[1] for lg in tlogits] == [3, 3, 2, 5]
    g, q = m.embed_target(x), m.embed_attributes(a)
    # image side: the global + 4 local projections, then the 4 quality weights (Figure 5b)
    assert q.shape == (3, 512 * 5) and g.shape == (3, 512 * 5 + 4)
    rho = g[:, 512 * 5:]
    assert float(rho.detach().min()) > 0 and float(rho.detach().max()) <= 1
    s = m.match(q, g)
    assert s.shape == (3, 3) and torch.isfinite(s).all()  # logits (issue 22: no sigmoid ties)


def test_batched_match_equals_pairwise_scores():
    m = _model().eval()
    g = m.embed_target(torch.rand(7, 3, 32, 32)).detach()
    q = m.embed_attributes(torch.tensor([[0, 1, 0, 1], [2, 0, 1, 3]])).detach()
    full = m.match(q, g, chunk=5)  # chunks smaller than one query's row
    with torch.no_grad():
        for i in range(2):
            direct = m.pair_logits(q[i:i + 1].expand(7, -1), g)
            assert torch.allclose(full[i], direct, atol=1e-6)


def test_loss_trains_everything_but_a_frozen_backbone():
    m = AIHM(SCHEMA, image_encoder="small_resnet", freeze_backbone=True)
    m.train()
    batch = {"images": torch.rand(6, 3, 32, 32),
             "attributes": torch.tensor([[0, 1, 0, 1], [2, 0, 1, 3], [1, 2, 0, 4]] * 2)}
    m.set_training_sets(batch["attributes"])
    out = m.loss(batch)
    assert set(out) >= {"loss", "match", "visual_cls", "text_cls"}
    out["loss"].backward()
    assert all(p.grad is None for p in m.backbone.parameters())
    for part in (m.head, m.fusion_cl, m.fusion_cm, m.visual.cls, m.textual.fc, m.fc_v_loc):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())
    assert m.backbone_parameters() == []
    # the cached frozen features equal a fresh forward pass
    cached = m.encode_image(batch["images"])
    m.eval()
    assert torch.allclose(cached, m.encode_image(batch["images"]), atol=1e-6)


def test_near_negatives_come_from_training_sets_only():
    """Issue 22: a near miss is a training set one attribute away, never a test combination
    (before, 14% of them were zero-shot test queries shown as negatives)."""
    m = _model()
    torch.manual_seed(0)
    train = torch.tensor([[0, 1, 0, 1], [0, 1, 0, 2], [2, 0, 1, 3], [1, 2, 0, 4], [1, 2, 1, 4],
                          [0, 0, 1, 0]])
    m.set_training_sets(train)
    seen = {tuple(r) for r in train.tolist()}
    for _ in range(20):
        near = m._negatives(train)[:, 1]
        assert all(tuple(r) in seen for r in near.tolist())
        d = (near != train).sum(1)
        # sets with a training neighbour one attribute away get one; the others another set
        assert d[0] == 1 and d[1] == 1 and d[3] == 1 and d[4] == 1
        assert d[2] >= 1 and d[5] >= 1
    with pytest.raises(TgirError, match="training sets"):
        _model()._negatives(train)


def test_quality_weights_scale_the_local_products():
    m = _model().eval()
    x = torch.rand(2, 3, 32, 32)
    g = m.embed_target(x)
    q = m.embed_attributes(torch.tensor([[0, 1, 0, 1], [2, 0, 1, 3]]))
    off = _model(quality=False).eval()
    off.load_state_dict(m.state_dict())
    g_off = off.embed_target(x)
    assert torch.allclose(g_off[:, -4:], torch.ones(2, 4))
    assert not torch.allclose(m.pair_logits(q, g), off.pair_logits(q, g_off))


def test_unknown_value_names_valid_ones():
    m = _model()
    with pytest.raises(TgirError, match="unknown value 'fireman' for attribute 'role'.*pilot"):
        m.embed_attributes({"gender": "man", "skin": "dark", "hair": "none", "role": "fireman"})
    with pytest.raises(TgirError, match="missing hair"):
        m.embed_attributes({"gender": "man", "skin": "dark", "role": "cook"})
    with pytest.raises(TgirError, match="unknown colour"):
        m.embed_attributes({"gender": "man", "skin": "dark", "hair": "none", "role": "cook",
                            "colour": "red"})


def test_attribute_classifier_scores_the_product_of_probabilities():
    m = AttributeClassifier(SCHEMA, image_encoder="small_resnet").eval()
    x = torch.rand(4, 3, 32, 32)
    a = torch.tensor([[0, 1, 0, 1], [2, 0, 1, 3]])
    with torch.no_grad():
        s = m.embed_attributes(a) @ m.embed_target(x).T
        probs = [torch.softmax(lg, 1) for lg in m.logits(x)]
    for qi in range(2):
        want = torch.log(torch.stack([probs[j][:, a[qi, j]] for j in range(4)]).prod(0))
        assert torch.allclose(s[qi], want, atol=1e-5)


def test_average_precision_by_hand():
    scores = np.array([[0.9, 0.8, 0.7, 0.6, 0.5], [0.1, 0.2, 0.3, 0.4, 0.5]])
    rel = np.array([[1, 0, 1, 0, 1], [1, 0, 0, 0, 0]], dtype=bool)
    ap = average_precision(scores, rel)
    assert ap[0] == pytest.approx((1 / 1 + 2 / 3 + 3 / 5) / 3)
    assert ap[1] == pytest.approx(1 / 5)  # the only relevant item is ranked last
    m = cmc_and_map(scores, rel, ks=(1, 5))
    assert m["R@1"] == 0.5 and m["R@5"] == 1.0
    assert m["mAP"] == pytest.approx((ap[0] + ap[1]) / 2)
    # a query without relevant items is left out, not counted as zero
    m2 = cmc_and_map(np.vstack([scores, scores[:1]]),
                     np.vstack([rel, np.zeros((1, 5), bool)]), ks=(1,))
    assert m2["mAP"] == pytest.approx(m["mAP"])


# ---------------------------------------------------------------- a learnable toy benchmark
COLORS = {"red": (220, 30, 30), "green": (30, 180, 30), "blue": (30, 60, 220)}
PLACES = ["top-left", "top-right", "bottom-left", "bottom-right"]
TOY_SCHEMA = {"color": sorted(COLORS), "place": PLACES, "size": ["large", "small"]}


def toy_split(n_per_combo=6, seed=0, size=32) -> AttributeSplit:
    """A colored square at one of four places, large or small: 24 combinations."""
    rng = np.random.default_rng(seed)
    imgs, attrs = [], []
    for ci, c in enumerate(TOY_SCHEMA["color"]):
        for pi in range(4):
            for si, sz in enumerate(TOY_SCHEMA["size"]):
                for _ in range(n_per_combo):
                    im = rng.integers(200, 256, (size, size, 3)).astype(np.uint8)
                    w = 12 if sz == "large" else 6
                    y0 = (2 if pi < 2 else size // 2 + 1) + int(rng.integers(0, 3))
                    x0 = (2 if pi % 2 == 0 else size // 2 + 1) + int(rng.integers(0, 3))
                    im[y0:y0 + w, x0:x0 + w] = COLORS[c]
                    imgs.append(im)
                    attrs.append([ci, pi, si])
    return AttributeSplit("toy", np.stack(imgs), np.array(attrs), TOY_SCHEMA)


def zero_shot(split: AttributeSplit, seed=0):
    combos = split.queries()
    test = combos[np.random.default_rng(seed).choice(len(combos), 6, replace=False)]
    is_test = (split.attributes[:, None] == test[None]).all(-1).any(1)
    return split.subset(np.flatnonzero(~is_test)), split.subset(np.flatnonzero(is_test))


def test_zero_shot_splits_share_no_combination():
    tr, te = zero_shot(toy_split())
    seen = {tuple(r) for r in tr.attributes}
    assert seen.isdisjoint({tuple(r) for r in te.attributes})
    # every single value of the test combinations was seen in training (compositional)
    for j in range(3):
        assert set(te.attributes[:, j]) <= set(tr.attributes[:, j])
    fit, val = split_train_val(tr, 0.2, seed=0)  # validation is zero-shot too
    assert {tuple(r) for r in fit.attributes}.isdisjoint({tuple(r) for r in val.attributes})
    rel = te.relevance(te.queries())
    assert (rel.sum(1) == 6).all()  # six images per combination


def _toy_config(model: str, steps: int) -> config.Config:
    return config.from_dict({
        "data": {"name": "toy", "root": ".", "val_fraction": 0.0},
        "model": {"name": model, "image_encoder": "small_resnet",
                  **({"dim_loc": 64, "dim_glo": 128, "dim_cm": 64} if model == "aihm" else {})},
        "train": {"steps": steps, "batch_size": 32, "optimizer": "adam", "lr": 0.001,
                  "backbone_lr": 0.001, "log_every": 20, "ckpt_every": 1000},
    })


@pytest.mark.slow
def test_aihm_learns_unseen_combinations_and_serves_them(tmp_path):
    from fastapi.testclient import TestClient

    from tgir.search.index import build_index
    from tgir.search.searcher import Query, Searcher
    from tgir.search.server import create_app

    tr, te = zero_shot(toy_split())
    run = tmp_path / "aihm"
    train(_toy_config("aihm", 150), run, progress=False, data=tr)
    from tgir.models.checkpoint import load_run

    _, _, model = load_run(run)
    metrics = evaluate_attribute_split(model, te)
    # 6 unseen combinations, 36 gallery images, 6 relevant each: chance mAP is about 0.2
    assert metrics["mAP"] > 0.5 and metrics["R@1"] >= 0.5, metrics

    # a folder catalog of the test images, then search through the Searcher and HTTP
    cat = tmp_path / "catalog"
    cat.mkdir()
    lines = []
    for i, im in enumerate(te.images):
        Image.fromarray(im).save(cat / f"{i:03d}.png")
        attrs = {a: TOY_SCHEMA[a][te.attributes[i, j]] for j, a in enumerate(TOY_SCHEMA)}
        lines.append(json.dumps({"file": f"{i:03d}.png", "id": f"t{i:03d}",
                                 "attributes": attrs}))
    (cat / "catalog.jsonl").write_text("\n".join(lines))
    with pytest.raises(TgirError, match="--kind flat"):
        build_index(run, cat, tmp_path / "ivf", kind="ivf", progress=False)
    index = build_index(run, cat, tmp_path / "index", progress=False)
    s = Searcher(run, index_dir=index, progress=False)
    want = {a: TOY_SCHEMA[a][te.attributes[0, j]] for j, a in enumerate(TOY_SCHEMA)}
    hits = s.search(Query(attributes=want), k=6)
    assert len(hits) == 6 and hits[0].meta["attributes"] == want
    assert [h.score for h in hits] == sorted([h.score for h in hits], reverse=True)

    client = TestClient(create_app(index, run_dir=run))
    assert client.get("/schema").json()["attributes"] == TOY_SCHEMA
    assert client.get("/health").json()["task"] == "attributes"
    r = client.post("/search", json={"attributes": want, "k": 3})
    assert r.status_code == 200 and r.json()["results"][0]["meta"]["attributes"] == want
    form = "; ".join(f"{k}={v}" for k, v in want.items())
    r2 = client.post("/search", data={"attributes": form, "k": "3"})
    assert r2.status_code == 200 and r2.json()["results"] == r.json()["results"]
    bad = client.post("/search", json={"attributes": {**want, "color": "purple"}})
    assert bad.status_code == 400 and "blue" in bad.json()["detail"]
    assert client.post("/search", json={"attributes": {"size": "large"}}).status_code == 400
    assert client.post("/search", json={"attributes": "color"}).status_code == 422


@pytest.mark.slow
def test_attribute_classifier_trains_on_the_same_protocol(tmp_path):
    tr, te = zero_shot(toy_split())
    run = tmp_path / "cls"
    train(_toy_config("attr_classifier", 100), run, progress=False, data=tr)
    from tgir.models.checkpoint import load_run

    _, _, model = load_run(run)
    metrics = evaluate_attribute_split(model, te)
    assert metrics["mAP"] > 0.5, metrics


def test_css2d_attribute_benchmark_is_zero_shot(tiny_css2d):
    from tgir.data import build, css2d
    from tgir.data.catalog import catalog_split, read_catalog

    objs = [{"cell": [1, 2], "color": "red", "shape": "circle", "size": "large"},
            {"cell": [0, 2], "color": "blue", "shape": "triangle", "size": "small"}]
    assert css2d.scene_attributes(objs) == {"count": "two", "color": "blue",
                                            "shape": "triangle", "size": "small"}
    tr, te = build("css2d_attr", tiny_css2d, "train"), build("css2d_attr", tiny_css2d, "test")
    assert tr.schema == te.schema and list(tr.schema) == ["count", "color", "shape", "size"]
    assert {tuple(r) for r in tr.attributes}.isdisjoint({tuple(r) for r in te.attributes})
    doc = css2d.read_annotations(tiny_css2d)
    assert len(tr.images) + len(te.images) == sum(len(s["images"])
                                                  for s in doc["splits"].values())
    kind, items = read_catalog(tiny_css2d, catalog_split("css2d_attr", "test"))
    assert kind == "css2d" and [it.id for it in items] == te.image_ids
    row = {k: te.schema[k][v] for k, v in zip(te.schema, te.attributes[0], strict=True)}
    assert items[0].meta["attributes"] == row


def test_diagnosis_ranks_by_the_head_and_by_aihms_own_classifiers():
    """issue 22: the own-classifier ranking is the log-product of AIHM's visual classifiers,
    the head ranking is what the evaluator reports; results rows per model and ranking."""
    from tgir.eval.aihm_diagnosis import diagnose_split, own_classifier_scores, results_doc

    torch.manual_seed(0)
    split = toy_split(n_per_combo=1)
    m = AIHM(TOY_SCHEMA, image_encoder="small_resnet", dim_loc=32, dim_glo=64, dim_cm=32).eval()
    q = split.queries()[:3]
    own = own_classifier_scores(m, split, q, batch_size=7)  # batches must not matter
    with torch.no_grad():
        _, _, lg = m.visual(m.encode_image(torch.from_numpy(split.images).permute(0, 3, 1, 2)
                                           .float() / 255))
    want = sum(torch.log_softmax(lg[j], 1)[:, torch.from_numpy(q[:, j])].T.numpy()
               for j in range(3))
    assert own.shape == (3, len(split.images)) and np.allclose(own, want, atol=1e-4)
    got = diagnose_split(m, split)
    assert set(got) == {"head", "own classifiers"}
    assert got["head"] == evaluate_attribute_split(m, split)
    fake = {"label": "AIHM 2-layer", "steps": 10, "benchmark": "toy",
            "test (unseen combinations)": got, "train (seen combinations)": got}
    doc = results_doc([{**fake, "seed": 0}, {**fake, "seed": 1}], "cmd")
    assert [r["model"] for r in doc["rows"]] == ["AIHM 2-layer: head",
                                                 "AIHM 2-layer: own classifiers"] * 2
    assert doc["rows"][0]["seeds"] == [0, 1] and doc["rows"][0]["metrics"]["mAP"]["std"] == 0
