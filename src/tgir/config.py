"""Run configuration: dataclasses, YAML load, ``--set key=value`` overrides, strict keys."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tgir import TgirError


@dataclass
class DataConfig:
    name: str = "css2d"
    root: str = "data/css2d-demo"
    image_size: int | None = None  # None: keep the stored size
    val_fraction: float = 0.05  # source scenes of train held out for validation
    train_split: str = "train"  # the split trained on (CUB / Flowers: train or trainval)
    eval_split: str = "test"
    strict: bool = False  # stop at the first missing / unreadable image (default: report all)


@dataclass
class TrainConfig:
    steps: int = 3000
    batch_size: int = 32
    queries_per_source: int = 2  # TIRG's CSS sampler: queries of one source share a batch,
    # so its other targets (near-duplicates of the right one) are the in-batch negatives
    optimizer: str = "sgd"  # sgd (momentum 0.9, as TIRG / MAAF) or adam
    lr: float = 0.01  # everything but the image backbone (Dodds et al. §2.4)
    backbone_lr: float = 0.001
    weight_decay: float = 1e-6
    lr_milestones: list[int] = field(default_factory=list)  # steps where lr *= lr_gamma
    lr_gamma: float = 0.1
    lr_decay_steps: int = 0  # > 0: smooth exponential decay, x lr_gamma every this many steps
    warmup_steps: int = 0
    grad_clip: float = 0.0  # 0 = off
    seed: int = 0
    device: str = "auto"  # auto: CUDA when available, else CPU
    log_every: int = 50
    ckpt_every: int = 500
    val_every: int = 0  # 0: only at the end
    val_queries: int = 1000  # validation queries scored each time (all if fewer)
    keep_best: str = ""  # a validation metric (e.g. mAP, R@1): keep the weights of the
    # validation with the highest value (checked every val_every steps), not the last step's
    feature_cache: str = "auto"  # frozen backbone (model.freeze_backbone): auto = cache its
    # maps once per image under $XDG_CACHE_HOME/tgir/features; off; or a directory


@dataclass
class EvalConfig:
    """Evaluation protocol options; the defaults are each paper's protocol."""

    gallery: str = "all"  # all: the split's gallery (every image / the split's image list);
    # queries: only the images the queries use (the query union, as VAL evaluates)
    keep_reference: bool = False  # keep the reference image in its own ranking (CLIP4Cir on
    # FashionIQ); TIRG and MAAF remove it
    rerank: int = 50  # text -> image: candidates re-scored with the full hierarchical score


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: dict[str, Any] = field(default_factory=lambda: {"name": "maaf"})
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict:
        return {"data": dataclasses.asdict(self.data), "model": dict(self.model),
                "train": dataclasses.asdict(self.train), "eval": dataclasses.asdict(self.eval)}


def _parse_value(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _check_section(cls, values: dict, section: str):
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise TgirError(f"unknown config key {section}.{unknown[0]} (known in {section}: "
                        f"{', '.join(sorted(known))})")
    return cls(**values)


def from_dict(d: dict) -> Config:
    if not isinstance(d, dict):
        raise TgirError("a config must be a mapping with data / model / train sections")
    unknown = sorted(set(d) - {"data", "model", "train", "eval"})
    if unknown:
        raise TgirError(f"unknown config section {unknown[0]!r} (sections: data, model, train, "
                        f"eval)")
    model = dict(d.get("model") or {"name": "maaf"})
    if "name" not in model:
        raise TgirError("config model section needs a name (e.g. model.name=maaf)")
    cfg = Config(data=_check_section(DataConfig, dict(d.get("data") or {}), "data"),
                 model=model,
                 train=_check_section(TrainConfig, dict(d.get("train") or {}), "train"),
                 eval=_check_section(EvalConfig, dict(d.get("eval") or {}), "eval"))
    if cfg.eval.gallery not in ("all", "queries"):
        raise TgirError(f"eval.gallery must be all or queries, got {cfg.eval.gallery!r}")
    return cfg


def apply_overrides(d: dict, overrides: list[str]) -> dict:
    """Apply ``section.key=value`` strings (values parsed as YAML) to a config dict."""
    d = {k: dict(v) if isinstance(v, dict) else v for k, v in d.items()}
    for item in overrides:
        if "=" not in item:
            raise TgirError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        if len(parts) != 2:
            raise TgirError(f"--set key must be section.key (e.g. train.steps), got {key!r}")
        d.setdefault(parts[0], {})[parts[1]] = _parse_value(value)
    return d


def load(path: str | Path, overrides: list[str] | None = None) -> Config:
    p = Path(path)
    if not p.is_file():
        raise TgirError(f"config file not found: {p}")
    try:
        d = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise TgirError(f"config {p} is not valid YAML: {e}") from e
    return from_dict(apply_overrides(d, overrides or []))


def dump(cfg: Config, path: Path) -> None:
    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
