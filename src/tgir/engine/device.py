"""Device choice: CUDA when present (or asked for), else CPU; never hard-coded."""

from __future__ import annotations

import torch

from tgir import TgirError


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise TgirError(f"device {name!r} asked for, but CUDA is not available here")
    try:
        return torch.device(name)
    except RuntimeError as e:
        raise TgirError(f"unknown device {name!r}") from e
