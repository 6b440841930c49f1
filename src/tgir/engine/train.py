"""One training loop for every composed model.

Seeded and reproducible (the batch and dropout randomness of step s depend only on the seed and
s, so a resumed run continues exactly), tqdm progress, a CSV log, safetensors checkpoints with
the config beside them, ``resume`` from the last checkpoint, CPU by default and CUDA when
available, separate learning rates for the image backbone and the rest (Dodds et al. §2.4).
Validation uses a held-out part of the train split; the test split is never touched here.
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from tgir import TgirError, config
from tgir.data import build
from tgir.data.images import to_tensor_batch
from tgir.data.text import Vocabulary
from tgir.data.types import AttributeSplit, ComposedSplit, ItemTextSplit, TextImageSplit
from tgir.engine import distributed
from tgir.engine.device import pick_device
from tgir.models import checkpoint as ckpt
from tgir.models.registry import check_options, data_options
from tgir.models.tasks import capabilities

Split = ComposedSplit | AttributeSplit | ItemTextSplit | TextImageSplit
Validator = Callable[[torch.nn.Module, Vocabulary, Split], dict[str, float]]
Batcher = Callable[[np.random.Generator], dict[str, torch.Tensor]]


def _hold_out_identities(split: TextImageSplit, fraction: float, seed: int):
    """Whole identities, with all their captions."""
    ids = np.unique(split.labels)
    rng = np.random.default_rng([seed, 7])
    val_ids = rng.choice(ids, size=max(1, int(round(fraction * len(ids)))), replace=False)
    is_val = np.isin(split.labels, val_ids)
    return (split.subset_images(np.flatnonzero(~is_val), f"{split.name}-train"),
            split.subset_images(np.flatnonzero(is_val), f"{split.name}-val"))


def _hold_out_items(split: ItemTextSplit, fraction: float, seed: int):
    """Whole catalog items."""
    rng = np.random.default_rng([seed, 7])
    is_val = np.zeros(len(split.images), dtype=bool)
    is_val[rng.choice(len(split.images), size=max(1, int(round(fraction * len(is_val)))),
                      replace=False)] = True
    return (split.subset(np.flatnonzero(~is_val), f"{split.name}-train"),
            split.subset(np.flatnonzero(is_val), f"{split.name}-val"))


def _hold_out_combinations(split: AttributeSplit, fraction: float, seed: int):
    """Whole attribute combinations, so validation is zero-shot like test."""
    combos = split.queries()
    rng = np.random.default_rng([seed, 7])
    n_val = max(1, int(round(fraction * len(combos))))
    val = combos[rng.choice(len(combos), size=n_val, replace=False)]
    is_val = (split.attributes[:, None, :] == val[None]).all(-1).any(1)
    return (split.subset(np.flatnonzero(~is_val), f"{split.name}-train"),
            split.subset(np.flatnonzero(is_val), f"{split.name}-val"))


def _hold_out_sources(split: ComposedSplit, fraction: float, seed: int):
    """Whole source images, with all their queries."""
    sources = np.unique(split.query_source)
    rng = np.random.default_rng([seed, 7])
    n_val = max(1, int(round(fraction * len(sources))))
    val_sources = rng.choice(sources, size=n_val, replace=False)
    is_val = np.isin(split.query_source, val_sources)
    return (split.subset_queries(np.flatnonzero(~is_val), f"{split.name}-train"),
            split.subset_queries(np.flatnonzero(is_val), f"{split.name}-val"))


def split_train_val(split: Split, fraction: float, seed: int) -> tuple[Split, Split | None]:
    """Hold out part of the train split for validation, by the unit its task's test split
    never shares with training (``SplitTask.hold_out``)."""
    if fraction <= 0:
        return split, None
    return split_task(split).hold_out(split, fraction, seed)


def _source_groups(split: ComposedSplit) -> list[np.ndarray]:
    order = np.argsort(split.query_source, kind="stable")
    _, starts = np.unique(split.query_source[order], return_index=True)
    return np.split(order, starts[1:])


def sample_batch(groups: list[np.ndarray], batch_size: int, per_source: int,
                 rng: np.random.Generator) -> np.ndarray:
    """Query indices for one step: ``batch_size / per_source`` random sources, then
    ``per_source`` distinct queries of each (fewer when a source has fewer)."""
    n_src = max(1, batch_size // max(1, per_source))
    picked: list[int] = []
    for g in rng.permutation(len(groups))[: min(n_src, len(groups))]:
        grp = groups[g]
        picked.extend(rng.choice(grp, size=min(per_source, len(grp)), replace=False).tolist())
    if len(picked) < batch_size:  # top up with random other queries
        pool = np.setdiff1d(np.concatenate(groups), picked)
        picked.extend(rng.choice(pool, size=min(batch_size - len(picked), len(pool)),
                                 replace=False).tolist())
    return np.array(picked[:batch_size], dtype=np.int64)


def composed_batcher(split: ComposedSplit, vocab: Vocabulary, tc: config.TrainConfig,
                     device: torch.device, share: tuple[int, int] = (0, 1)) -> Batcher:
    """Batches of (source, text, target) queries, TIRG's sampler (``sample_batch``); with
    ``share = (rank, world)`` this rank's part of the global batch."""
    ids_all, len_all = vocab.encode_batch(split.query_text)
    groups = _source_groups(split)

    def make(rng: np.random.Generator) -> dict[str, torch.Tensor]:
        q = distributed.part(sample_batch(groups, tc.batch_size, tc.queries_per_source, rng),
                             share)
        tgt = split.query_target[q]
        width = max(int(len_all[q].max()), 1)
        return {
            "source": to_tensor_batch(split.images[split.query_source[q]]).to(device),
            "target": to_tensor_batch(split.images[tgt]).to(device),
            "ids": torch.from_numpy(ids_all[q][:, :width]).to(device),
            "lengths": torch.from_numpy(len_all[q]).to(device),
            "target_label": torch.from_numpy(split.labels[tgt]).to(device),
        }
    return make


def attribute_batcher(split: AttributeSplit, tc: config.TrainConfig, device: torch.device,
                      share: tuple[int, int] = (0, 1)) -> Batcher:
    """Batches of (image, its attribute set); the model draws its own negatives."""
    def make(rng: np.random.Generator) -> dict[str, torch.Tensor]:
        i = distributed.part(rng.choice(len(split.images), size=min(tc.batch_size,
                                                                   len(split.images)),
                                        replace=False), share)
        return {"images": to_tensor_batch(split.images[i]).to(device),
                "attributes": torch.from_numpy(split.attributes[i]).to(device)}
    return make


def pairs_batcher(split: ItemTextSplit, vocab: Vocabulary, tc: config.TrainConfig,
                  device: torch.device, share: tuple[int, int] = (0, 1)) -> Batcher:
    """Batches of catalog items (image, bag of metadata words, multi-hot labels), Sadeh et al.."""
    def make(rng: np.random.Generator) -> dict[str, torch.Tensor]:
        i = distributed.part(rng.choice(len(split.images), size=min(tc.batch_size,
                                                                   len(split.images)),
                                        replace=False), share)
        ids, labels = split.word_batch(vocab.stoi, i)
        return {"images": to_tensor_batch(split.images[i]).to(device),
                "word_ids": torch.from_numpy(ids).to(device),
                "labels": torch.from_numpy(labels).to(device)}
    return make


def caption_batcher(split: TextImageSplit, tc: config.TrainConfig, device: torch.device,
                    share: tuple[int, int] = (0, 1)) -> Batcher:
    """Batches of captions with their images and identities (Zheng et al.)."""
    def make(rng: np.random.Generator) -> dict:
        c = distributed.part(rng.choice(split.num_queries, size=min(tc.batch_size,
                                                                   split.num_queries),
                                        replace=False), share)
        img = split.caption_image[c]
        return {"images": to_tensor_batch(split.images[img]).to(device),
                "texts": [split.captions[i] for i in c],
                "ids": torch.from_numpy(split.labels[img]).to(device)}
    return make


def _no_extras(split: Split, out: Path) -> None:
    return None


def _save_display(split: ItemTextSplit, out: Path) -> None:
    (out / "display.json").write_text(json.dumps(split.display))  # catalog display names


def _first_queries(split: ComposedSplit, n: int) -> ComposedSplit:
    if split.num_queries > n:
        return split.subset_queries(np.arange(n))
    return split


@dataclass(frozen=True)
class SplitTask:
    """What training needs from one split type (``split.task``): how validation is held out,
    the vocabulary, the batcher, what counts as a training example, the model options the
    data implies, files written beside the run, and the validation subset scored."""

    hold_out: Callable[[Split, float, int], tuple[Split, Split]]
    vocabulary: Callable[[Split, Split], Vocabulary]
    batcher: Callable[..., Batcher]  # (train split, vocab, train config, device, share)
    examples: Callable[[Split], int]
    model_defaults: Callable[[dict, Split], None]
    extras: Callable[[Split, Path], None] = _no_extras
    val_subset: Callable[[Split, int], Split] = lambda split, n: split


SPLIT_TASKS: dict[str, SplitTask] = {
    "composed": SplitTask(
        _hold_out_sources, lambda full, tr: Vocabulary.build(tr.query_text), composed_batcher,
        lambda sp: sp.num_queries, lambda m, full: None, val_subset=_first_queries),
    "attributes": SplitTask(
        _hold_out_combinations,
        lambda full, tr: Vocabulary.build([v for vals in full.schema.values() for v in vals]),
        lambda sp, vocab, tc, dev, share: attribute_batcher(sp, tc, dev, share),
        lambda sp: len(sp.images),
        lambda m, full: m.setdefault("schema", full.schema)),  # the attribute vocabulary
    "pairs": SplitTask(
        _hold_out_items, lambda full, tr: Vocabulary(full.vocabulary), pairs_batcher,
        lambda sp: len(sp.images), lambda m, full: None, extras=_save_display),
    "text": SplitTask(  # the model tokenises its own text (MiniLM word pieces)
        _hold_out_identities, lambda full, tr: Vocabulary([]),
        lambda sp, vocab, tc, dev, share: caption_batcher(sp, tc, dev, share),
        lambda sp: sp.num_queries,
        lambda m, full: m.setdefault("num_ids", int(full.labels.max()) + 1)),  # eq. 10
}


def split_task(split: Split) -> SplitTask:
    return SPLIT_TASKS[split.task]


@torch.no_grad()
def calibrate_words(model, split: ItemTextSplit, vocab: Vocabulary, batch: int = 256) -> None:
    """Per-word attribute thresholds by F-score on ``split`` (Sadeh et al. §4.3)."""
    model.eval()
    dev = next(model.parameters()).device
    probs = []
    for i in range(0, len(split.images), batch):
        f = model.encode_image(to_tensor_batch(split.images[i:i + batch]).to(dev))
        probs.append(model.attribute_probs(f).cpu())
    _, labels = split.word_batch(vocab.stoi, np.arange(len(split.images)))
    model.calibrate(torch.cat(probs), torch.from_numpy(labels))


def calibrate_levels(model, split: TextImageSplit, max_captions: int | None = None) -> None:
    """HGAN's level weights chosen on the validation split (``HGAN.calibrate_levels``):
    the first ``max_captions`` captions against every validation image."""
    dev = next(model.parameters()).device
    n = len(split.captions) if not max_captions else min(max_captions, len(split.captions))
    chosen = model.calibrate_levels(
        to_tensor_batch(split.images).to(dev), list(split.captions[:n]),
        torch.from_numpy(np.asarray(split.caption_labels[:n])),
        torch.from_numpy(np.asarray(split.labels)))
    if chosen:
        print("level weights chosen on validation: "
              + ", ".join(f"{k} {v:g}" for k, v in chosen.items()), file=sys.stderr)


def _lr_factor(tc: config.TrainConfig, step: int) -> float:
    f = tc.lr_gamma ** sum(step >= m for m in tc.lr_milestones)
    if tc.lr_decay_steps:  # smooth exponential decay: x lr_gamma every lr_decay_steps
        f *= tc.lr_gamma ** (step / tc.lr_decay_steps)
    if tc.warmup_steps and step < tc.warmup_steps:
        f *= (step + 1) / tc.warmup_steps
    return f


def make_optimizer(model: torch.nn.Module, tc: config.TrainConfig) -> torch.optim.Optimizer:
    bb = {id(p) for p in model.backbone_parameters()}
    groups = [
        {"params": [p for p in model.parameters() if id(p) in bb], "lr": tc.backbone_lr,
         "base_lr": tc.backbone_lr},
        {"params": [p for p in model.parameters() if id(p) not in bb], "lr": tc.lr,
         "base_lr": tc.lr},
    ]
    if tc.optimizer == "sgd":
        return torch.optim.SGD(groups, momentum=0.9, weight_decay=tc.weight_decay)
    if tc.optimizer == "adam":
        return torch.optim.Adam(groups, weight_decay=tc.weight_decay)
    raise TgirError(f"unknown optimizer {tc.optimizer!r} (sgd, adam)")


def _optim_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"optim.{idx}.{k}"] = v
            else:
                scalars[f"{idx}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _load_optim(opt: torch.optim.Optimizer, tensors: dict, meta: dict) -> None:
    state: dict[int, dict] = {}
    for key, v in tensors.items():
        if key.startswith("optim."):
            _, idx, k = key.split(".", 2)
            state.setdefault(int(idx), {})[k] = v
    for key, v in meta["scalars"].items():
        idx, k = key.split(".", 1)
        state.setdefault(int(idx), {})[k] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def _save_checkpoint(path: Path, model, opt, step: int, cfg: config.Config) -> None:
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    ot, ometa = _optim_tensors(opt)
    tensors.update(ot)
    ckpt.atomic_save(tensors, path, {"step": step, "optim": ometa, "config": cfg.to_dict()})


def _keep_if_best(model, metric: str, metrics: dict, step: int, best: dict | None,
                  path: Path) -> dict | None:
    """Save the weights when validation ``metric`` beats ``best`` (train.keep_best)."""
    if not metric:
        return best
    if metric not in metrics:
        raise TgirError(f"train.keep_best: {metric!r} is not a validation metric of this "
                        f"task (it reports {', '.join(sorted(metrics))})")
    value = float(metrics[metric])
    if best is not None and value <= best["value"]:
        return best  # ties keep the earlier, less trained weights
    best = {"step": step, "value": value}
    ckpt.atomic_save(model.state_dict(), path, {"best": best})
    return best


def _feature_cache(model, spec, images: np.ndarray, tc: config.TrainConfig,
                   info: distributed.DistInfo, device: torch.device, progress: bool):
    """The disk cache of the model's frozen features (``spec``), filled with the training
    images (rank 0 computes the missing ones, the model in eval mode; the other ranks then
    open it)."""
    from tgir.models.feature_cache import DiskFeatureCache, default_root

    root = default_root() if tc.feature_cache == "auto" else Path(tc.feature_cache)
    if info.is_main:
        cache = DiskFeatureCache(root, spec.key)
        was = model.training
        model.eval()
        try:
            n = cache.build(spec.extract, images, device, progress=progress)  # reopens shards
        finally:
            model.train(was)
        print(f"feature cache: {cache.dir} ({len(cache)} images, {n} computed now; "
              f"--cache-dir or train.feature_cache moves it)", file=sys.stderr)
    distributed.barrier(info)
    return cache if info.is_main else DiskFeatureCache(root, spec.key)


class Trainer:
    """One training run in named phases (``run`` calls them in order):

    ``check`` (run directory, resume, batch size) -> ``load_data`` (the split, the model's
    data-derived config, the train / validation split) -> ``prepare_dir`` (vocabulary and
    config beside the run) -> ``build`` (model, optimizer, resume, feature cache, batcher) ->
    ``loop`` (steps, log, validation, checkpoints) -> ``finish`` (calibration, the final
    model, the summary).
    """

    def __init__(self, cfg: config.Config, out: str | Path, resume: bool = False,
                 validate: Validator | None = None, progress: bool = True,
                 data: Split | None = None, stop_at: int | None = None):
        self.cfg, self.tc, self.out = cfg, cfg.train, Path(out)
        self.resume, self.validate, self.data, self.stop_at = resume, validate, data, stop_at
        self.last = self.out / "checkpoints" / "last.safetensors"
        self.best_path = self.out / "checkpoints" / "best.safetensors"
        self.info, self.device = distributed.setup(pick_device(self.tc.device))
        self.progress = progress and self.info.is_main

    def run(self) -> dict:
        """Train ``cfg`` into ``out``; returns a summary (steps, seconds, last loss, val
        metrics), or ``{"steps": n, "stopped": True}`` when ``stop_at`` ended it early."""
        self.check()
        self.load_data()
        self.prepare_dir()
        self.build()
        stopped = self.loop()
        return stopped if stopped is not None else self.finish()

    def check(self) -> None:
        """Refuse a non-empty run directory without ``resume`` (decided by rank 0 alone,
        before anyone writes, then shared) and impossible batch / validation settings."""
        out, tc, info = self.out, self.tc, self.info
        problem = None
        if info.is_main:
            if out.exists() and any(out.iterdir()) and not self.resume:
                problem = (f"run directory {out} is not empty: pass --resume to continue it, "
                           f"or choose another --out")
            elif self.resume and not self.last.is_file():
                problem = f"cannot resume: no checkpoint at {self.last}"
        if not distributed.broadcast_flag(info, problem is None):
            raise TgirError(problem or f"rank 0 refused the run directory {out}")
        check_options(self.cfg.model["name"],
                      {k: v for k, v in self.cfg.model.items() if k != "name"})
        if tc.steps < 1 or tc.batch_size < 2:
            raise TgirError("train.steps must be >= 1 and train.batch_size >= 2")
        if tc.keep_best and (self.validate is None or not tc.val_every):
            raise TgirError(f"train.keep_best: {tc.keep_best} needs validation: set "
                            f"train.val_every > 0 and data.val_fraction > 0")
        if tc.batch_size % info.world:
            raise TgirError(f"train.batch_size {tc.batch_size} (the global batch) must divide "
                            f"evenly over {info.world} processes")

    def load_data(self) -> None:
        """The train split, the model config it implies (identity count, attribute schema,
        token count) and its train / validation parts."""
        cfg, tc = self.cfg, self.tc
        full = self.data if self.data is not None else build(
            cfg.data.name, cfg.data.root, cfg.data.train_split, cfg.data.image_size,
            strict=cfg.data.strict)
        self.full = full
        self.task = split_task(full)
        self.task.model_defaults(cfg.model, full)  # e.g. the attribute schema, identity count
        for key, value in data_options(cfg.model["name"], full).items():
            cfg.model.setdefault(key, value)  # the model's own (hffca: its token count)
        self.train_split, self.val_split = split_train_val(full, cfg.data.val_fraction, tc.seed)
        if tc.keep_best and self.val_split is None:
            raise TgirError(f"train.keep_best: {tc.keep_best} needs a validation split: set "
                            f"data.val_fraction > 0")
        n_train = self.task.examples(self.train_split)
        if n_train < tc.batch_size:
            raise TgirError(f"only {n_train} training {'queries' if n_train else 'images'} "
                            f"for batch size {tc.batch_size}")

    def prepare_dir(self) -> None:
        """Create the run directory (removing temp files of a killed writer) and write or
        read the vocabulary; the config (and catalog display names) beside it."""
        out, full, info = self.out, self.full, self.info
        if info.is_main:
            out.mkdir(parents=True, exist_ok=True)
            for stale in [*out.glob(".*.safetensors.*"),
                          *out.glob("checkpoints/.*.safetensors.*")]:
                stale.unlink()  # temp files of a writer that was killed; real files are intact
        if self.resume:
            self.vocab = Vocabulary.load(out / "vocab.json")
        else:
            self.vocab = self.task.vocabulary(full, self.train_split)
            if info.is_main:
                self.vocab.save(out / "vocab.json")
                config.dump(self.cfg, out / "config.yaml")
                self.task.extras(full, out)
        distributed.barrier(info)

    def build(self) -> None:
        """Model and optimizer (from the last checkpoint when resuming), the frozen-feature
        cache, the model's data hooks and the batcher of the split's task."""
        cfg, tc, info, device, ts = self.cfg, self.tc, self.info, self.device, self.train_split
        torch.manual_seed(tc.seed)
        model = ckpt.build_model(cfg, len(self.vocab)).to(device)
        self.opt = make_optimizer(model, tc)
        self.start = 0
        if self.resume:
            tensors, meta = ckpt.read(self.last)
            model.load_state_dict({k[6:]: v for k, v in tensors.items()
                                   if k.startswith("model.")})
            _load_optim(self.opt, tensors, meta["optim"])
            self.start = int(meta["step"])
        self.caps = caps = capabilities(model)
        spec = (model.cache_spec(int(ts.images.shape[1]))
                if caps.has("cache_spec") and tc.feature_cache != "off" else None)
        self.cache = None
        if spec is not None:  # a frozen image part: its features once per training image
            self.cache = _feature_cache(model, spec, ts.images, tc, info, device,
                                        self.progress)
            model.feature_cache = self.cache
        if caps.has("set_training_sets"):  # AIHM's near misses: the training sets only
            model.set_training_sets(torch.from_numpy(np.asarray(ts.attributes)))
        if not self.resume and caps.has("init_from_data"):  # PCA + GloVe (Sadeh et al.)
            model.init_from_data(ts.images, [None, None] + [self.full.display.get(w, w)
                                                            for w in self.vocab.itos[2:]])
        self.make_batch = self.task.batcher(ts, self.vocab, tc, device, (info.rank, info.world))
        self.model = model
        self.step_loss = distributed.wrap(model, info, device)  # DDP around model.loss

    def loop(self) -> dict | None:
        """Steps ``start .. train.steps``; returns the early-stop summary for ``stop_at``."""
        tc, info = self.tc, self.info
        log_path = self.out / "log.csv"
        new_log = not log_path.exists() or not self.resume
        log_f = open(log_path if info.is_main else os.devnull, "w" if new_log else "a",
                     newline="")
        self.log = csv.writer(log_f)
        if new_log:
            self.log.writerow(["step", "loss", "lr", "seconds", "val"])
        self.t0 = time.time()
        self.val_metrics: dict = {}
        self.best = (ckpt.read(self.best_path)[1]["best"]
                     if self.resume and tc.keep_best and self.best_path.is_file()
                     else None)  # {"step", "value"} of the best validation so far
        self.losses: list[float] = []
        bar = tqdm(range(self.start, tc.steps), initial=self.start, total=tc.steps,
                   desc="train", disable=not self.progress, mininterval=1.0)
        try:
            self.model.train()
            for step in bar:
                self._step(step)
                done = step + 1
                if done % tc.log_every == 0 or self._val_due(done) or done == tc.steps:
                    self._log(done, bar)
                    log_f.flush()
                if info.is_main and (done % tc.ckpt_every == 0 or done == tc.steps
                                     or done == self.stop_at):
                    _save_checkpoint(self.last, self.model, self.opt, done, self.cfg)
                if done == self.stop_at and done < tc.steps:
                    distributed.barrier(info)
                    return {"steps": done, "stopped": True}
        finally:
            log_f.close()
            bar.close()
        return None

    def _step(self, step: int) -> None:
        """One optimizer step; the batch and dropout randomness depend only on (seed, step)."""
        tc, model = self.tc, self.model
        torch.manual_seed(tc.seed * 1_000_003 + step + 7919 * self.info.rank)
        rng = np.random.default_rng([tc.seed, step])
        if self.caps.has("schedule"):  # e.g. unfreeze the top backbone blocks
            model.schedule(step)
        batch = self.make_batch(rng)
        for g in self.opt.param_groups:
            g["lr"] = g["base_lr"] * _lr_factor(tc, step)
        loss = self.step_loss(batch)["loss"]
        if not math.isfinite(loss.item()):
            raise TgirError(f"loss became {loss.item()} at step {step}: lower train.lr "
                            f"(the last checkpoint {self.last} is intact)")
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if tc.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
        self.opt.step()
        self.losses.append(loss.item())

    def _val_due(self, done: int) -> bool:
        tc = self.tc
        return (self.validate is not None and self.val_split is not None
                and self.info.is_main
                and ((tc.val_every and done % tc.val_every == 0) or done == tc.steps))

    def _log(self, done: int, bar) -> None:
        """A log row (mean loss of the last ``log_every`` steps), validating when due and
        keeping the best validation's weights (``train.keep_best``)."""
        tc = self.tc
        mean = float(np.mean(self.losses[-tc.log_every:]))
        bar.set_postfix(loss=f"{mean:.3f}")
        val_now = self._val_due(done)
        if val_now:
            vs = self.task.val_subset(self.val_split, tc.val_queries)
            self.val_metrics = self.validate(self.model, self.vocab, vs)
            self.model.train()
            self.best = _keep_if_best(self.model, tc.keep_best, self.val_metrics, done,
                                      self.best, self.best_path)
        self.log.writerow([done, f"{mean:.5f}", self.opt.param_groups[1]["lr"],
                           f"{time.time() - self.t0:.1f}",
                           json.dumps(self.val_metrics) if val_now else ""])

    def finish(self) -> dict:
        """The summary; on rank 0, the best validation's weights (``keep_best``), the
        calibrations chosen on validation, the final model and ``train_summary.json``."""
        tc, model, info = self.tc, self.model, self.info
        summary = {"steps": tc.steps, "resumed_from": self.start,
                   "seconds": round(time.time() - self.t0, 1),
                   "final_loss": (float(np.mean(self.losses[-tc.log_every:]))
                                  if self.losses else None),
                   "val": self.val_metrics, "processes": info.world}
        if self.best is not None:  # the final model is the best validation's
            tensors, _ = ckpt.read(self.best_path)
            model.load_state_dict(tensors)
            summary["best"] = {"step": self.best["step"], tc.keep_best: self.best["value"]}
        fc = self.cache
        if fc is not None:  # batches served from the cache vs through the backbone
            summary["feature_cache"] = {"dir": str(fc.dir), "hits": fc.hits,
                                        "misses": fc.misses}
        if info.is_main:
            vs = self.val_split
            if self.caps.task == "pairs":  # per-word thresholds on validation (Sadeh et al.)
                calibrate_words(model, vs if vs is not None else self.train_split, self.vocab)
            if self.caps.has("calibrate_levels") and vs is not None:  # HGAN level weights
                calibrate_levels(model, vs, tc.val_queries)
            ckpt.atomic_save(model.state_dict(), self.out / "model.safetensors",
                             {"step": tc.steps, "model": self.cfg.model,
                              "image_size": int(self.train_split.images.shape[1])})
            (self.out / "train_summary.json").write_text(json.dumps(summary, indent=1))
        distributed.barrier(info)
        return summary


def train(cfg: config.Config, out: str | Path, resume: bool = False,
          validate: Validator | None = None, progress: bool = True,
          data: Split | None = None, stop_at: int | None = None) -> dict:
    """Train ``cfg`` into ``out``; returns a summary (steps, seconds, last loss, val metrics).

    ``stop_at`` ends this call after that many steps with a checkpoint but no final model, as
    an interruption would (``resume=True`` then continues to ``train.steps``). See
    ``Trainer`` for the phases.
    """
    return Trainer(cfg, out, resume, validate, progress, data, stop_at).run()
