"""Floor 1: datasets, images and text. Knows nothing of models."""

from tgir.data.registry import build, names

__all__ = ["build", "names"]
