"""Floor 2: models. Knows the data types, not training."""

from tgir.models.registry import create_model, names

__all__ = ["create_model", "names"]
