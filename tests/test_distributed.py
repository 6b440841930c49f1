"""Multi-process training (issue 10): two gloo processes on one global batch give the
one-process gradient (the batch loss gathers every share's embeddings with gradients), and
``torchrun -m tgir train`` runs end to end with rank-0-only files."""

import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch

from tgir import config

from .conftest import tiny_train_config


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _grads(root, world: int, rank: int, loss_name: str):
    """Gradients of one step on the global batch of step 0, this rank's share."""
    from tgir.data import build
    from tgir.data.text import Vocabulary
    from tgir.engine import distributed
    from tgir.engine.train import composed_batcher
    from tgir.models.checkpoint import build_model

    cfg = config.from_dict(tiny_train_config(root))
    cfg.model["loss"] = loss_name
    split = build("css2d", root, "train")
    vocab = Vocabulary.build(split.query_text)
    torch.manual_seed(0)
    model = build_model(cfg, len(vocab)).eval()  # no dropout, fixed BatchNorm statistics
    info, dev = distributed.setup(torch.device("cpu"))
    step = distributed.wrap(model, info, dev)
    batch = composed_batcher(split, vocab, cfg.train, dev, (rank, world))(
        np.random.default_rng([0, 0]))
    step(batch)["loss"].backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _worker(rank: int, world: int, port: int, root: str, out: str, loss_name: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from tgir.engine import distributed

    g = _grads(root, world, rank, loss_name)
    if rank == 0:
        torch.save(g, out)
    distributed.cleanup(distributed.from_env())


@pytest.mark.parametrize("loss_name", ["batch_classification", "soft_triplet"])
def test_two_processes_give_the_one_process_gradient(tiny_css2d, tmp_path, loss_name):
    one = _grads(tiny_css2d, 1, 0, loss_name)
    out = tmp_path / "g.pt"
    torch.multiprocessing.spawn(_worker, args=(2, _free_port(), str(tiny_css2d), str(out),
                                               loss_name), nprocs=2, join=True)
    two = torch.load(out)
    assert set(one) == set(two) and len(one) > 10
    for n in one:
        assert torch.allclose(one[n], two[n], rtol=1e-4, atol=1e-6), n


def test_torchrun_trains_with_rank_zero_writing(tiny_css2d, tmp_path):
    cfg = tmp_path / "c.yaml"
    d = tiny_train_config(tiny_css2d, steps=4)
    d["data"]["val_fraction"] = 0.05
    d["train"].update(val_every=2, ckpt_every=2)
    config.dump(config.from_dict(d), cfg)
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                        "--master_port", str(_free_port()), "-m", "tgir", "train", str(cfg),
                        "--out", str(run), "-q"], capture_output=True, text=True, env=env,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    import json

    summary = json.loads((run / "train_summary.json").read_text())
    assert summary["processes"] == 2 and summary["steps"] == 4
    log = (run / "log.csv").read_text().splitlines()
    assert log[0].startswith("step,loss") and len(log) == 1 + 4 // 2  # one writer only
    assert (run / "model.safetensors").is_file()
    from tgir.eval.evaluate import evaluate_run

    assert evaluate_run(run, progress=False)["metrics"]["R@1"] >= 0.0
