import os

import pytest
import torch

os.environ.setdefault("TQDM_DISABLE", "1")
torch.set_num_threads(2)


@pytest.fixture(scope="session")
def tiny_css2d(tmp_path_factory):
    """A tiny generated css2d dataset shared by the tests (a few hundred images)."""
    from tgir.data import css2d

    root = tmp_path_factory.mktemp("data") / "css2d-tiny"
    css2d.generate(root, "tiny", seed=3, progress=False)
    return root
