"""Training of the stellar Transformer, on a CPU or a CUDA GPU, with exact resumption.

AdamW with CosineAnnealingWarmRestarts (stepped per batch, in fractional epochs), gradient
clipping, and eq. 11's loss in standardised units. On CUDA: bf16 autocast (fp16 with a
GradScaler where bf16 is absent), TF32 matrix products and fused scaled-dot-product attention;
on the CPU: float32. Every epoch ends with a validation loss, a line of progress (rate, ETA)
and a row of ``history.csv``; checkpoints hold everything needed to resume.

What "exact" means (tests/test_model.py checks both statements):
- with ``threads=1`` on a CPU, a run interrupted and resumed ends with weights identical, bit for
  bit, to an uninterrupted run's (same machine, same torch build);
- with more CPU threads, or on CUDA, the reductions inside matrix products are split in an order
  that varies from run to run, so two uninterrupted runs already differ in the last bits; a
  resumed run then agrees with an uninterrupted one as closely as two uninterrupted runs do
  (measured: max |dw| ~5e-5 after 4 epochs of the small preset with 2 threads; tested < 1e-3).
"""
from __future__ import annotations

import csv
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..io.atomic import atomic_path, torch_save, write_json
from ..settings import from_dict
from .data import TokenStream
from .model import ModelConfig, StellarTransformer, preset, robust_gaussian_nll

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    epochs_per_cycle: int = 16
    cycles: int = 2
    batch_size: int = 512
    lr: float = 1e-3
    lr_min: float = 1e-6
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    seed: int = 0
    held_out: tuple = ("bprp", "jk")
    min_inputs: int = 5
    targets_per_star: int = 1  # the paper asks one question per star per epoch; more reuse each encoding
    target_weights: dict | None = None  # relative odds of a token being the target (default 1 each)
    identity_fraction: float = 1.0  # share of stars whose targets may also be inputs (the paper: 1.0)
    label_input_fraction: float = 0.0  # share of stars with only non-XP inputs, asked for XP and g_fakemag (the paper: 0)
    label_input_targets: tuple = ()  # tokens label-only stars are also asked for, besides XP and g_fakemag
    stars_with: tuple = ()  # train and validate only on stars having at least one of these tokens (empty: all stars)
    checkpoint_every: int = 5
    num_workers: int = 0
    device: str = "auto"  # auto | cpu | cuda
    threads: int = 0  # CPU threads for torch (0: leave torch's default)

    @property
    def epochs(self):
        return self.epochs_per_cycle * self.cycles

    @classmethod
    def from_dict(cls, d):
        return from_dict(cls, d, "train")


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device is 'cuda' but no CUDA GPU is visible; use 'auto' or 'cpu'")
    return torch.device(name)


def precision_for(device: torch.device):
    """(autocast dtype or None, whether a GradScaler is needed) for a device."""
    if device.type != "cuda":
        return None, False
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    if torch.cuda.is_bf16_supported():
        return torch.bfloat16, False
    return torch.float16, True


def _loss(model, batch, device, amp_dtype):
    ids, vals, mask, tid, target, terr, ok = (t.to(device, non_blocking=True) for t in batch)
    with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        mean, logvar = model(ids, vals, mask, tid)
    per_target = robust_gaussian_nll(mean, logvar, target, terr)  # (stars, targets)
    n = ok.sum()
    return (per_target * ok).sum() / n.clamp(min=1), int(n)


@torch.no_grad()
def evaluate(model, stream, device, amp_dtype):
    model.eval()
    stream.set_epoch(0)  # the same validation sample every epoch
    total, count = 0.0, 0
    for batch in stream:
        loss, n = _loss(model, batch, device, amp_dtype)
        total += float(loss) * n
        count += n
    model.train()
    return total / max(count, 1)


def run_signature(model_cfg: ModelConfig, cfg: TrainConfig, store_hash, init_hash=None) -> str:
    """What a checkpoint must match to be resumed: architecture, schedule, data, starting weights (not threads or workers)."""
    from ..hashing import config_hash

    train = {k: v for k, v in asdict(cfg).items() if k not in ("threads", "num_workers", "checkpoint_every", "device")}
    return config_hash({"model": model_cfg.to_dict(), "train": train, "tokens": store_hash, "code": code_hash(), "init": init_hash})


def model_config(preset_name: str, overrides: dict | None, vocab_size: int, init_from=None) -> ModelConfig:
    """The architecture to train: a preset with overrides or, when starting from a trained (or
    imported) model, that model's own, with this vocabulary's size (its weights must fit)."""
    if init_from is not None:
        meta = json.loads((Path(init_from) / "config.json").read_text())
        return ModelConfig.from_dict({**meta["model"], "vocab_size": vocab_size})
    return preset(preset_name, **{"vocab_size": vocab_size, **(overrides or {})})


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
        per_token = name in ("embedding.weight", "embedding.bias")
        if tensor.shape[per_token:] != target[name].shape[per_token:]:
            raise ValueError(f"{d}: {name} has shape {tuple(tensor.shape)}, this model {tuple(target[name].shape)}; "
                             "init_from needs the same preset and model overrides")
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


def code_hash() -> str:
    """The training code itself (this package's sources): a checkpoint from other code is not resumed."""
    import hashlib

    h = hashlib.sha256()
    for f in sorted(Path(__file__).parent.glob("*.py")):
        h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()[:16]


def _state(model, opt, sched, scaler, epoch, history, signature):
    return {"signature": signature, "model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else None, "epoch": epoch, "history": history,
            "torch_rng": torch.get_rng_state(), "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def _save(obj, path: Path):
    torch_save(obj, path)


def _streams(store_path, model_cfg: ModelConfig, cfg: TrainConfig):
    """The sampled training stream and the fixed validation sample of the token store."""
    train_stream = TokenStream(store_path, "train", cfg.batch_size, model_cfg.context, cfg.seed, cfg.held_out, cfg.min_inputs,
                               n_targets=cfg.targets_per_star, target_weights=cfg.target_weights,
                               identity_fraction=cfg.identity_fraction, label_input_fraction=cfg.label_input_fraction,
                               stars_with=cfg.stars_with, label_input_targets=cfg.label_input_targets)
    val_stream = TokenStream(store_path, "val", cfg.batch_size, model_cfg.context, cfg.seed + 1, cfg.held_out, cfg.min_inputs,
                             shuffle=False, stars_with=cfg.stars_with)
    return train_stream, val_stream


def _restore(state, model, opt, sched, scaler):
    """Weights, optimiser, schedule, scaler and random state of a checkpoint (``_state``)."""
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    if scaler is not None and state["scaler"]:
        scaler.load_state_dict(state["scaler"])
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])


def _train_epoch(model, loader, opt, sched, scaler, device, amp_dtype, epoch, n_batches, grad_clip, on_step, step_every):
    """One pass over the loader; the schedule steps per batch in fractional epochs.
    Returns (summed loss x targets, targets, stars, the learning rate of the last step)."""
    total, count, stars = 0.0, 0, 0
    lr_used = opt.param_groups[0]["lr"]
    for i, batch in enumerate(loader):
        loss, n = _loss(model, batch, device, amp_dtype)
        stars += batch[0].shape[0]
        opt.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            opt.step()
        lr_used = opt.param_groups[0]["lr"]  # before the step: the last one may restart the cycle
        sched.step(epoch + (i + 1) / n_batches)
        total += float(loss.detach()) * n
        count += n
        step = epoch * n_batches + i + 1
        if on_step and step % step_every == 0:
            on_step(step, float(loss.detach()), lr_used)
    return total, count, stars, lr_used


def train(store_path, out_dir, model_cfg: ModelConfig, cfg: TrainConfig, resume: bool = True, stop_after_epoch: int | None = None,
          on_epoch=None, on_step=None, step_every: int = 10, init_from=None):
    """Train on the token store's train split; writes model.pt, config.json, history.csv, checkpoints/.

    ``stop_after_epoch`` ends the run early (as an interruption would), leaving a resumable checkpoint.
    ``on_epoch(row)`` is called with each epoch's row of the history (for a tracker's curves); a
    resumed run first replays the rows of the epochs it had done. ``on_step(step, loss, lr)`` is
    called every ``step_every`` optimiser steps (step counted over the whole run).
    ``init_from`` (a model folder) starts from its weights instead of random ones (``init_from_model``).
    """
    out = Path(out_dir)
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    device = pick_device(cfg.device)
    amp_dtype, need_scaler = precision_for(device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    train_stream, val_stream = _streams(store_path, model_cfg, cfg)
    if model_cfg.vocab_size != len(train_stream.vocab):
        raise ValueError(f"model vocab_size {model_cfg.vocab_size} != token store vocabulary {len(train_stream.vocab)}")
    model = StellarTransformer(model_cfg)
    init_hash = init_from_model(model, train_stream.vocab, init_from) if init_from else None
    model = model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=cfg.epochs_per_cycle, eta_min=cfg.lr_min)
    scaler = torch.amp.GradScaler("cuda") if need_scaler else None
    start, history = 0, []
    last = out / "last.pt"
    signature = run_signature(model_cfg, cfg, train_stream.store_hash, init_hash)
    state = torch.load(last, map_location=device, weights_only=False) if resume and last.exists() else None
    if state is not None and state.get("signature") != signature:
        log.warning("%s was written for another configuration or token store; starting afresh", last)
        state = None
    if state is not None:
        _restore(state, model, opt, sched, scaler)
        start, history = state["epoch"] + 1, state["history"]
        log.info("resuming from %s at epoch %d", last, start)
    for row in history if on_epoch else ():
        on_epoch(row)
    # Workers are started afresh each epoch (no persistent_workers): each gets a copy of the
    # stream made after set_epoch, so every epoch draws new subsets and targets.
    loader = torch.utils.data.DataLoader(train_stream, batch_size=None, num_workers=cfg.num_workers,
                                         pin_memory=device.type == "cuda")
    n_batches = max(len(train_stream), 1)
    log.info("training %d parameters on %s (%s), %d train / %d val stars, %d epochs of %d batches",
             model.n_parameters(), device, amp_dtype or "float32", train_stream.n_stars, val_stream.n_stars, cfg.epochs, n_batches)
    model.train()
    t_run = time.perf_counter()
    for epoch in range(start, cfg.epochs):
        train_stream.set_epoch(epoch)
        t0 = time.perf_counter()
        total, count, stars, lr_used = _train_epoch(model, loader, opt, sched, scaler, device, amp_dtype, epoch, n_batches,
                                                    cfg.grad_clip, on_step, step_every)
        dt = time.perf_counter() - t0
        val = evaluate(model, val_stream, device, amp_dtype)
        row = {"epoch": epoch, "train_loss": total / max(count, 1), "val_loss": val, "lr": lr_used,
               "seconds": round(dt, 3), "stars_per_s": round(stars / max(dt, 1e-9), 1)}
        history.append(row)
        if on_epoch:
            on_epoch(row)
        done = epoch + 1 - start
        eta = (time.perf_counter() - t_run) / done * (cfg.epochs - epoch - 1)
        log.info("epoch %4d/%d  train %.4f  val %.4f  lr %.2e  %8.0f stars/s  ETA %s", epoch + 1, cfg.epochs,
                 row["train_loss"], val, row["lr"], row["stars_per_s"], time.strftime("%H:%M:%S", time.gmtime(eta)))
        _write_history(out / "history.csv", history)
        final = epoch + 1 == cfg.epochs
        stopping = stop_after_epoch is not None and epoch >= stop_after_epoch
        if final or stopping or (epoch + 1) % cfg.checkpoint_every == 0:
            state = _state(model, opt, sched, scaler, epoch, history, signature)
            _save(state, out / "checkpoints" / f"epoch_{epoch + 1:04d}.pt")
            _save(state, last)
        if stopping and not final:
            log.info("stopping after epoch %d as asked; resume to continue", epoch + 1)
            return model, history
    if history:  # also when resuming a run that had already finished (the loop did not run)
        _write_history(out / "history.csv", history)
    write_model(out, model, model_cfg, cfg, train_stream)
    return model, history


def _write_history(path, history):
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(history[0]))
        w.writeheader()
        w.writerows(history)


def write_model(out: Path, model, model_cfg: ModelConfig, cfg: TrainConfig, stream: TokenStream):
    """The self-describing model folder: weights plus architecture, vocabulary and standardisation."""
    from ..tokens.store import open_token_store

    root = open_token_store(stream.path)
    _save({k: v.detach().cpu() for k, v in model.state_dict().items()}, out / "model.pt")
    meta = {
        "format": "stellar-transformer/1",
        "model": model_cfg.to_dict(),
        "vocabulary": stream.vocab,
        "median": [float(x) for x in stream.median],
        "mad_std": [float(x) for x in stream.mad],
        "held_out_outputs": list(cfg.held_out),
        "train": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()},
        "n_parameters": model.n_parameters(),
        "token_store_config_hash": root.attrs.get("config_hash"),
    }
    write_json(meta, out / "config.json")
