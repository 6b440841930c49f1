import numpy as np
import pytest
import torch

from tgir import TgirError, config
from tgir.data import build
from tgir.engine.train import train
from tgir.eval.evaluate import copy_source_baseline, evaluate_run, evaluate_split
from tgir.models import checkpoint


def _cfg(root, model="tirg", **train_opts):
    return config.from_dict({
        "data": {"name": "css2d", "root": str(root), "val_fraction": 0.1},
        "model": {"name": model, "embed_dim": 32, "word_dim": 16,
                  "image_encoder_cfg": {"widths": [8, 16, 32]}},
        "train": {"steps": 6, "batch_size": 8, "log_every": 2, "ckpt_every": 100,
                  **train_opts},
    })


def test_save_load_round_trip(tiny_css2d, tmp_path):
    run = tmp_path / "run"
    train(_cfg(tiny_css2d, "maaf"), run, progress=False)
    cfg, vocab, model = checkpoint.load_run(run)
    saved, _ = checkpoint.read(run / "model.safetensors")
    for k, v in model.state_dict().items():
        assert torch.equal(v, saved[k]), k
    assert cfg.model["name"] == "maaf" and len(vocab) > 10
    assert (run / "config.yaml").is_file() and (run / "log.csv").is_file()


def test_resume_continues_exactly(tiny_css2d, tmp_path):
    cfg = _cfg(tiny_css2d, "maaf")
    train(cfg, tmp_path / "straight", progress=False)
    summary = train(cfg, tmp_path / "cut", progress=False, stop_at=3)
    assert summary["stopped"] and not (tmp_path / "cut" / "model.safetensors").exists()
    train(cfg, tmp_path / "cut", resume=True, progress=False)
    a, _ = checkpoint.read(tmp_path / "straight" / "model.safetensors")
    b, _ = checkpoint.read(tmp_path / "cut" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), atol=1e-6), k


def test_refuses_to_overwrite_a_run(tiny_css2d, tmp_path):
    run = tmp_path / "run"
    train(_cfg(tiny_css2d), run, progress=False)
    before = (run / "model.safetensors").read_bytes()
    with pytest.raises(TgirError, match="not empty"):
        train(_cfg(tiny_css2d), run, progress=False)
    assert (run / "model.safetensors").read_bytes() == before


def test_validation_never_reads_the_test_split(tiny_css2d, tmp_path, monkeypatch):
    import tgir.engine.train as tr

    seen = []
    real = tr.build

    def spy(name, root, split, *a, **kw):
        seen.append(split)
        return real(name, root, split, *a, **kw)

    monkeypatch.setattr(tr, "build", spy)
    splits = []
    train(_cfg(tiny_css2d), tmp_path / "r", progress=False,
          validate=lambda m, v, s: splits.append(s.name) or {"R@1": 0.0})
    assert seen == ["train"] and splits == ["css2d-train-val"]


def test_copy_source_baseline_and_eval(tiny_css2d, tmp_path):
    test = build("css2d", tiny_css2d, "test")
    r = copy_source_baseline(test)
    assert 0.0 <= r["R@1"] <= r["R@5"] <= r["R@10"] <= 1.0
    run = tmp_path / "run"
    train(_cfg(tiny_css2d), run, progress=False)
    res = evaluate_run(run, progress=False)
    assert set(res["metrics"]) >= {"R@1", "R@5", "R@10", "R@50", "R@100"}
    assert (run / "metrics.json").is_file()


@pytest.mark.slow
def test_short_training_learns(tiny_css2d, tmp_path):
    """A small but real run: MAAF must beat both the untrained model and the text-blind
    copy-the-source baseline on held-out test queries."""
    cfg = _cfg(tiny_css2d, "maaf", steps=150, batch_size=24, queries_per_source=6, lr=0.01,
               backbone_lr=0.01, ckpt_every=1000)
    cfg.model.update(levels=[-1], blocks=1, attention="identity")
    test = build("css2d", tiny_css2d, "test")
    train(cfg, tmp_path / "run", progress=False)
    _, vocab, model = checkpoint.load_run(tmp_path / "run")
    trained = evaluate_split(model, vocab, test)
    torch.manual_seed(0)
    untrained = evaluate_split(checkpoint.build_model(cfg, len(vocab)).eval(), vocab, test)
    copy = copy_source_baseline(test)
    assert trained["R@1"] > untrained["R@1"] + 0.1
    assert trained["R@1"] > copy["R@1"]
    assert np.isfinite(trained["R@10"])


def test_keep_best_restores_the_best_validation(tiny_css2d, tmp_path):
    """train.keep_best: the saved model is the weights of the best validation, not the last
    step's; a scripted validator makes step 4 the best of 2, 4, 6."""
    scores = iter([0.2, 0.9, 0.5])
    snapshots = {}

    def validate(m, v, s):
        value = next(scores)
        snapshots[value] = {k: t.clone() for k, t in m.state_dict().items()}
        return {"mAP": value}

    run = tmp_path / "run"
    summary = train(_cfg(tiny_css2d, "maaf", val_every=2, keep_best="mAP"), run,
                    progress=False, validate=validate)
    assert summary["best"] == {"step": 4, "mAP": 0.9}
    saved, _ = checkpoint.read(run / "model.safetensors")
    assert all(torch.equal(saved[k], t) for k, t in snapshots[0.9].items())
    assert not all(torch.equal(saved[k], t) for k, t in snapshots[0.5].items())


def test_keep_best_needs_a_validation_metric(tiny_css2d, tmp_path):
    with pytest.raises(TgirError, match="val_every"):
        train(_cfg(tiny_css2d, keep_best="mAP"), tmp_path / "a", progress=False,
              validate=lambda m, v, s: {"mAP": 0.0})
    with pytest.raises(TgirError, match="'mAP' is not a validation metric"):
        train(_cfg(tiny_css2d, keep_best="mAP", val_every=2), tmp_path / "b", progress=False,
              validate=lambda m, v, s: {"R@1": 0.0})


def test_keep_best_survives_a_resume(tiny_css2d, tmp_path):
    scores = iter([0.2, 0.9, 0.5])
    cfg = _cfg(tiny_css2d, "maaf", val_every=2, keep_best="mAP")
    run = tmp_path / "run"
    v = lambda m, vocab, s: {"mAP": next(scores)}  # noqa: E731
    train(cfg, run, progress=False, validate=v, stop_at=4)
    summary = train(cfg, run, resume=True, progress=False, validate=v)
    assert summary["best"] == {"step": 4, "mAP": 0.9}
