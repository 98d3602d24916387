"""Training of the stellar Transformer through the shared engine (``engine.run``), which does
device and precision, data-parallel ranks, threads, seeds, AdamW with cosine warm restarts stepped
per batch, gradient clipping, validation, progress, history and exact resumption (see its
docstring for what "exact" means). This module supplies the token store's batches and eq. 11's
loss in standardised units, and writes the self-describing model folder.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from functools import partial
from pathlib import Path

import torch

from .. import distributed, engine
from ..engine import autocast
from ..io.atomic import torch_save, write_json
from ..settings import plain
from ..workflow.codedeps import code_hash
from .data import TokenSampler, length_groups
from .model import ModelConfig, StellarTransformer, preset, robust_gaussian_nll
from .settings import TrainConfig

log = logging.getLogger(__name__)


class TokenJob:
    """The engine's job for the tabular model: the token store's sampled batches and eq. 11's loss
    (``model``: the network as the engine runs it, DDP-wrapped or compiled)."""

    def __init__(self, train_batches, val_batches, loader, device, amp_dtype, groups: int = 1, ranks=None, beta: float = 0.0):
        self.train_batches, self.val_batches, self.loader = train_batches, val_batches, loader
        self.beta = beta  # train.loss_beta: the training loss's beta-NLL weighting (validation stays eq. 11)
        self.device, self.amp_dtype, self.groups = device, amp_dtype, groups
        self.ranks = ranks or distributed.Ranks()

    def batches(self, epoch):
        self.train_batches.set_epoch(epoch)
        return self.loader

    def n_batches(self):
        return len(self.train_batches)

    def stars(self, batch):
        return batch[0].shape[0]

    def loss(self, model, batch, beta: float | None = None):
        """Eq. 11's mean over the batch's targets (weighted by ``beta``, default the training's); the
        batch runs as ``groups`` groups of similar input counts (``length_groups``) whose summed
        losses are the whole batch's."""
        beta = self.beta if beta is None else beta
        batch = tuple(t.to(self.device, non_blocking=True) for t in batch)
        total, n = 0.0, 0
        for ids, vals, mask, tid, target, terr, ok in length_groups(batch, self.groups, 8 if self.device.type == "cuda" else 1):
            with autocast(self.device, self.amp_dtype):
                mean, logvar = model(ids, vals, mask, tid)
            per_target = robust_gaussian_nll(mean, logvar, target, terr, beta)  # (stars, targets)
            total, n = total + (per_target * ok).sum(), n + ok.sum()
        return total / n.clamp(min=1), n

    def validation_loss(self, model):
        """Eq. 11's mean over the fixed validation sample (each rank its share, summed over them)."""
        self.val_batches.set_epoch(0)  # the same validation sample every epoch
        total, count = torch.zeros((), device=self.device), torch.zeros((), device=self.device)
        for batch in self.val_batches:
            loss, n = self.loss(model, self.ranks.shard(batch), beta=0.0)
            total += loss.float() * n
            count += n
        return float(self.ranks.sum(total)) / max(float(self.ranks.sum(count)), 1.0)


def resolve_length_groups(setting, device) -> int:
    """``train.length_groups``: ``auto`` is 8 on the CPU (measured: benchmarks/bench_train_loop.py)
    and 1 on CUDA; an integer >= 1 as given."""
    if setting == "auto":
        return 1 if device.type == "cuda" else 8
    if isinstance(setting, bool) or not isinstance(setting, int) or setting < 1:
        raise ValueError(f"train.length_groups: {setting!r} is not auto or an integer >= 1")
    return setting


def run_signature(model_cfg: ModelConfig, cfg: TrainConfig, store_hash, init_hash=None, resident: str | None = None) -> str:
    """What a checkpoint must match to be resumed: architecture, schedule, data and how it is
    drawn (``resident``: held or streamed), starting weights (not threads, device or compilation)."""
    from ..hashing import config_hash

    how = (
        "threads",
        "num_workers",
        "checkpoint_every",
        "device",
        "compile",
        "resident",
        "length_groups",
        "processes",
    )  # not what is computed
    train = {k: v for k, v in asdict(cfg).items() if k not in how} | {"resident": resident}
    return config_hash({"model": model_cfg.to_dict(), "train": train, "tokens": store_hash, "code": code_hash(__file__), "init": init_hash})


def model_config(preset_name: str, overrides: dict | None, vocab_size: int, init_from=None) -> ModelConfig:
    """The architecture to train: a preset with overrides or, when starting from a trained (or
    imported) model, that model's own, with this vocabulary's size (its weights must fit)."""
    if init_from is not None:
        meta = json.loads((Path(init_from) / "config.json").read_text())
        return ModelConfig.from_dict({**meta["model"], "vocab_size": vocab_size})
    return preset(preset_name, **{"vocab_size": vocab_size, **(overrides or {})})


WORKFLOW_KEYS = ("name", "gpus", "init_from_base", "import_from")  # a train block's keys that the workflow reads, not training


def configs_of(block: dict, n_tokens: int, threads: int = 0, init_from=None) -> tuple[ModelConfig, TrainConfig]:
    """A configuration's train block (config.yaml's ``train``, or a model's settings from the plan)
    as the architecture (``model_config``) and the training settings; ``threads`` where the block
    gives none."""
    p = {k: v for k, v in block.items() if k not in WORKFLOW_KEYS}
    model_cfg = model_config(p.pop("preset", "small"), p.pop("model", None), n_tokens, init_from=init_from)
    return model_cfg, TrainConfig.from_dict({**p, "threads": p.get("threads") or threads})


def init_from_model(model: StellarTransformer, vocab, model_dir) -> str:
    """Start from a trained model's weights: every tensor is copied, and the per-token rows of the
    embedding (w_x, b_x) are copied by token name, so a vocabulary that adds tokens (mass, age)
    keeps what the model knew and starts the new tokens afresh. The architecture must match.
    Returns a hash of the weights (part of the run's signature)."""
    import hashlib

    d = Path(model_dir)
    meta = json.loads((d / "config.json").read_text())
    state = torch.load(d / "model.pt", map_location="cpu", weights_only=True)
    old = {t: i for i, t in enumerate(meta["vocabulary"])}
    shared = [(i, old[t]) for i, t in enumerate(vocab) if t in old]
    target = model.state_dict()
    for name, tensor in state.items():
        if name not in target:
            raise ValueError(f"{d}: its weights have {name}, which this model lacks; init_from needs the same architecture")
        per_token = name in ("embedding.weight", "embedding.bias", "embedding.frequency")
        if tensor.shape[per_token:] != target[name].shape[per_token:]:
            raise ValueError(
                f"{d}: {name} has shape {tuple(tensor.shape)}, this model {tuple(target[name].shape)}; "
                "init_from needs the same preset and model overrides"
            )
        if per_token:  # rows by token name (row 0 is padding, vocabulary index i is row i + 1)
            new_rows = torch.tensor([0] + [i + 1 for i, _ in shared])
            old_rows = torch.tensor([0] + [j + 1 for _, j in shared])
            target[name][new_rows] = tensor[old_rows].to(target[name].dtype)
        else:
            target[name].copy_(tensor)
    missing = sorted(set(target) - set(state))
    if missing:
        raise ValueError(f"{d}: its weights lack {missing[:3]}; init_from needs the same preset and model overrides")
    model.load_state_dict(target)
    fresh = [t for t in vocab if t not in old]
    log.info("starting from %s: %d of %d tokens known, new: %s", d, len(shared), len(vocab), fresh or "none")
    return hashlib.sha256((d / "model.pt").read_bytes()).hexdigest()[:16]


def train(
    store_path,
    out_dir,
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    resume: bool = True,
    stop_after_epoch: int | None = None,
    on_epoch=None,
    on_step=None,
    step_every: int = 10,
    init_from=None,
):
    """Train on the token store's train split; writes model.pt, config.json, history.csv, checkpoints/.
    Returns (the trained network, the history).

    ``stop_after_epoch`` ends the run early (as an interruption would), leaving a resumable checkpoint.
    ``on_epoch(row)`` is called with each epoch's row of the history (for a tracker's curves); a
    resumed run first replays the rows of the epochs it had done. ``on_step(step, loss, lr)`` is
    called every ``step_every`` optimiser steps (step counted over the whole run; not with DDP ranks).
    ``init_from`` (a model folder) starts from its weights instead of random ones (``init_from_model``).
    ``cfg.processes`` > 1 runs the training as that many DDP ranks (engine.run launches them).
    """
    spec = rank_spec(store_path, out_dir, model_cfg, cfg, resume, stop_after_epoch, init_from)
    model, history = engine.run(
        partial(_training, store_path, Path(out_dir), model_cfg, cfg, init_from),
        engine.Setup.of(cfg),
        out_dir,
        ranks_entry=(f"{__name__}:train_from_spec", spec),
        resume=resume,
        stop_after_epoch=stop_after_epoch,
        on_epoch=on_epoch,
        on_step=on_step,
        step_every=step_every,
    )
    if model is None:  # trained by DDP ranks: the weights they wrote
        model = StellarTransformer(model_cfg)
        model.load_state_dict(engine.trained_weights(out_dir))
    return model, history


def _training(store_path, out: Path, model_cfg: ModelConfig, cfg: TrainConfig, init_from, place: engine.Place) -> engine.Training:
    """The engine's training of the tabular model on ``place``: the store's samplers, the network
    (from ``init_from``'s weights or random ones), the job, and the model folder to write at the end."""
    device = place.device if cfg.num_workers == 0 else torch.device("cpu")  # workers sample on the host
    train_stream = TokenSampler(store_path, "train", cfg.sampling(), model_cfg.context, device)
    val_stream = TokenSampler(store_path, "val", cfg.sampling(validation=True), model_cfg.context, device)
    if model_cfg.vocab_size != len(train_stream.vocab):
        raise ValueError(f"model vocab_size {model_cfg.vocab_size} != token store vocabulary {len(train_stream.vocab)}")
    model = StellarTransformer(model_cfg)
    init_hash = init_from_model(model, train_stream.vocab, init_from) if init_from else None
    # Streaming workers are started afresh each epoch (no persistent_workers): each gets a copy
    # of the sampler made after set_epoch, so every epoch draws new subsets and targets.
    loader = train_stream
    if cfg.num_workers:
        loader = torch.utils.data.DataLoader(
            train_stream, batch_size=None, num_workers=cfg.num_workers, pin_memory=place.device.type == "cuda"
        )
    groups = resolve_length_groups(cfg.length_groups, place.device)
    r = place.ranks
    log.info(
        "training %d parameters on %s (%s, data %s), %d train / %d val stars, %d epochs of %d batches%s",
        model.n_parameters(),
        place.device,
        place.amp_dtype or "float32",
        train_stream.resident,
        train_stream.n_stars,
        val_stream.n_stars,
        cfg.epochs,
        max(len(train_stream), 1),
        f", {r.world} data-parallel ranks of batch {cfg.batch_size // r.world}" if r.world > 1 else "",
    )
    return engine.Training(
        model,
        TokenJob(train_stream, val_stream, loader, place.device, place.amp_dtype, groups, r, cfg.loss_beta),
        cfg.schedule(),
        run_signature(model_cfg, cfg, train_stream.store_hash, init_hash, train_stream.resident),
        finish=lambda trained: write_model(out, trained, model_cfg, cfg, train_stream),
    )


def train_from_spec(spec: dict):
    """One DDP rank of ``train`` (``python -m pipeline.distributed``, launched by engine.run)."""
    train(
        spec["store"],
        spec["out"],
        ModelConfig.from_dict(spec["model"]),
        TrainConfig.from_dict(spec["train"]),
        resume=spec.get("resume", True),
        stop_after_epoch=spec.get("stop_after_epoch"),
        init_from=spec.get("init_from"),
    )


def rank_spec(store_path, out_dir, model_cfg: ModelConfig, cfg: TrainConfig, resume=True, stop_after_epoch=None, init_from=None) -> dict:
    """What each rank's ``train_from_spec`` is given (JSON)."""
    return {
        "store": str(store_path),
        "out": str(out_dir),
        "model": model_cfg.to_dict(),
        "train": plain(cfg),
        "resume": resume,
        "stop_after_epoch": stop_after_epoch,
        "init_from": str(init_from) if init_from else None,
    }


def write_model(out: Path, model, model_cfg: ModelConfig, cfg: TrainConfig, stream: TokenSampler):
    """The self-describing model folder: weights plus architecture, vocabulary and standardisation."""
    from ..tokens.store import open_token_store

    root = open_token_store(stream.path)
    torch_save({k: v.detach().cpu() for k, v in model.state_dict().items()}, out / "model.pt")
    meta = {
        "format": "stellar-transformer/1",
        "model": model_cfg.to_dict(),
        "vocabulary": stream.vocab,
        "median": [float(x) for x in stream.median],
        "mad_std": [float(x) for x in stream.mad],
        "held_out_outputs": list(cfg.held_out),
        "train": plain(cfg),
        "n_parameters": model.n_parameters(),
        "token_store_config_hash": root.attrs.get("config_hash"),
    }
    write_json(meta, out / "config.json")
