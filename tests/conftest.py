import os

import pytest
import torch

os.environ.setdefault("TQDM_DISABLE", "1")
torch.set_num_threads(2)


@pytest.fixture(scope="session", autouse=True)
def _feature_cache_home(tmp_path_factory):
    """Frozen-backbone feature caches (``train.feature_cache: auto``) go under a temporary
    XDG_CACHE_HOME, never the user's ~/.cache."""
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield
    if old is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = old


@pytest.fixture(scope="session")
def tiny_css2d(tmp_path_factory):
    """A tiny generated css2d dataset shared by the tests (a few hundred images)."""
    from tgir.data import css2d

    root = tmp_path_factory.mktemp("data") / "css2d-tiny"
    css2d.generate(root, "tiny", seed=3, progress=False)
    return root


def tiny_train_config(root, model="maaf", embed_dim=32, steps=4):
    return {
        "data": {"name": "css2d", "root": str(root)},
        "model": {"name": model, "embed_dim": embed_dim, "word_dim": 16, "levels": [-1],
                  "blocks": 1, "image_encoder_cfg": {"widths": [8, 16, 32]}},
        "train": {"steps": steps, "batch_size": 8, "log_every": 2},
    }


@pytest.fixture(scope="session")
def tiny_run(tiny_css2d, tmp_path_factory):
    """A MAAF run trained for a few steps on tiny css2d (enough for plumbing tests)."""
    from tgir import config
    from tgir.engine.train import train

    run = tmp_path_factory.mktemp("runs") / "maaf"
    train(config.from_dict(tiny_train_config(tiny_css2d)), run, progress=False)
    return run


RELIABILITY = pytest.StashKey[dict]()


@pytest.fixture(scope="session")
def reliability(request):
    """Counters the reliability tests fill; printed as one summary line at the end."""
    stats = request.config.stash.setdefault(
        RELIABILITY, {"inputs tried": 0, "faults injected": 0, "5xx seen": 0, "data lost": 0})
    return stats


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    stats = config.stash.get(RELIABILITY, None)
    if stats:
        terminalreporter.write_line("reliability: " + ", ".join(f"{k} {v}"
                                                                for k, v in stats.items()))
