"""Weights on disk: safetensors only (no pickle), atomic writes, and loading a trained run.

A run directory holds ``config.yaml``, ``vocab.json``, ``model.safetensors`` (the final
weights) and ``checkpoints/last.safetensors`` (weights + optimizer state + step, to resume).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from tgir import TgirError, config
from tgir.data.text import Vocabulary
from tgir.models.registry import create_model


def atomic_save(tensors: dict[str, torch.Tensor], path: Path, metadata: dict | None = None
                ) -> None:
    """Write safetensors to a temp file in the same directory, fsync it, then rename over
    ``path``: a kill or a full disk never leaves a half-written file where a good one was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, tmp,
                  metadata={k: json.dumps(v) for k, v in (metadata or {}).items()})
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise TgirError(f"cannot write {path}: {e.strerror or e} (the previous file, if any, "
                        f"is intact)") from e
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    path = Path(path)
    if not path.is_file():
        raise TgirError(f"checkpoint not found: {path}")
    try:
        tensors = load_file(str(path))
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            meta = {k: json.loads(v) for k, v in (f.metadata() or {}).items()}
    except (SafetensorError, OSError, json.JSONDecodeError) as e:
        raise TgirError(f"checkpoint {path} is corrupt: {e}") from e
    return tensors, meta


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build_model(cfg: config.Config, vocab_size: int) -> torch.nn.Module:
    opts = {k: v for k, v in cfg.model.items() if k != "name"}
    return create_model(cfg.model["name"], vocab_size=vocab_size, **opts)


def load_run(run_dir: str | Path, device: str | torch.device = "cpu"
             ) -> tuple[config.Config, Vocabulary, torch.nn.Module]:
    """The config, vocabulary and trained model of a finished ``tgir train`` run."""
    run = Path(run_dir)
    if not run.is_dir():
        raise TgirError(f"run directory not found: {run}")
    weights = run / "model.safetensors"
    if not weights.is_file():
        raise TgirError(f"no trained model in {run} (model.safetensors missing: train it with "
                        f"tgir train CONFIG --out {run}, or --resume an interrupted run)")
    cfg = config.load(run / "config.yaml")
    vocab = Vocabulary.load(run / "vocab.json")
    model = build_model(cfg, len(vocab))
    tensors, meta = read(weights)
    try:
        model.load_state_dict(tensors)
    except RuntimeError as e:
        raise TgirError(f"{weights} does not match the model in {run / 'config.yaml'}: "
                        f"{str(e).splitlines()[0]}") from e
    # the side the model was trained at; queries and catalog images are resized to it
    model.image_size = int(meta.get("image_size") or cfg.data.image_size or 64)
    return cfg, vocab, model.to(device).eval()
