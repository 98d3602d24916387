"""The one training engine. Every model of the pipeline trains through ``fit``: the stellar
Transformer (model/train.py), the three SpectraFM stages and the FCNN (spectrafm/train.py) and the
contrastive search (search/contrastive.py). Each supplies only a ``Job``: its batches, its loss,
its validation loss and how many stars a batch holds.

What the engine does, the same for all of them:
- device and precision: on CUDA bf16 autocast (fp16 with a GradScaler where bf16 is absent),
  TF32 matrix products; on the CPU float32, or bf16 autocast on request (``device_and_precision``);
- AdamW over the job's parameter groups (fused into one kernel on CUDA), the cosine schedule with
  warm restarts stepped per batch in fractional epochs (one cycle: plain cosine annealing),
  gradient clipping; the losses add up on the device and are read back once an epoch, so no
  step waits on the host (a job's batches are best made on the device too: model/data.py);
- the epoch loop, a validation loss after each epoch, a progress line (rate, ETA), ``history.csv``;
- checkpoints (pipeline/checkpoints.py: ``last.pt``, and ``checkpoints/epoch_NNNN.pt`` every ``checkpoint_every`` epochs)
  with everything needed to resume exactly: weights, optimiser, schedule, scaler, torch's random
  state and the history, stamped with a run signature (architecture, settings, data, code) so that
  a checkpoint of another run is never resumed;
- callbacks for the tracker's curves: ``on_epoch(row)`` (replayed on resumption), ``on_step``;
- data-parallel ranks (pipeline/distributed.py: DDP launched by torchrun): every rank draws the
  same global batch and runs its share, each rank's loss weighted by its share of the batch's
  targets so that DDP's averaged gradient is the whole batch's; the epoch's loss, stars and the
  validation summed over the ranks; rank 0 alone writes checkpoints, history and progress.

How a model trains: its module calls ``run(prepare, Setup.of(settings), out_dir)``. ``run`` sets up
the device and precision, the ranks (launching them with torchrun when ``processes`` > 1, or
joining their group when this process is one), the threads and the seed; then calls ``prepare(place)``,
which builds the model's data and network on ``place.device`` and returns a ``Training``; then wraps
the network (DDP among ranks, torch.compile when asked), runs ``fit``, lets rank 0 write the model's
final files (``Training.finish``) and holds the ranks at a barrier.

What "exact" means: a job draws its batches from (seed, epoch) alone, so on a CPU a run interrupted
and resumed ends with weights identical, bit for bit, to an uninterrupted run's, and two runs to each
other (same machine, torch build and thread count; tested with one and two threads). A network must
use operations whose backward adds in a fixed order for that (F.embedding, not indexing a parameter:
index_put_'s accumulation is thread-ordered on the CPU). On CUDA, reductions run in a varying order
and two uninterrupted runs differ in the last bits, as a resumed run does.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Protocol

import torch

from . import distributed
from .checkpoints import (  # noqa: F401 (read back through the engine by every model)
    checkpoint,
    drop_stale_best,
    keep_if_best,
    resume_from,
    run_state,
    trained_weights,
    write_history,
)
from .distributed import Ranks, ranks

log = logging.getLogger(__name__)


class Job(Protocol):
    """What a model's training supplies to the engine."""

    def batches(self, epoch: int) -> Iterable:  # the epoch's training batches, drawn from (seed, epoch)
        ...

    def n_batches(self) -> int:  # per epoch (the schedule steps in fractions of it)
        ...

    def loss(self, model, batch) -> tuple[torch.Tensor, int]:  # (mean loss, its weight: targets or stars)
        ...

    def validation_loss(self, model) -> float:  # NaN when there is no validation set
        ...

    def stars(self, batch) -> int:  # for the rate
        ...


@dataclass
class Schedule:
    epochs: int
    lr: float | list  # one learning rate, or one per parameter group
    lr_min: float = 0.0
    cycle_epochs: int = 0  # warm restarts every this many epochs (0: one cycle of cosine annealing)
    weight_decay: float = 1e-4
    grad_clip: float | None = 1.0  # None: no clipping
    checkpoint_every: int = 1  # last.pt and checkpoints/epoch_NNNN.pt every this many epochs (and the last)
    keep: str = "last"  # the weights the training ends with: the last epoch's, or "best": those of the epoch of
    #                     lowest validation loss (kept in best.pt as the run goes; early stopping without stopping)

    def __post_init__(self):
        if self.keep not in ("last", "best"):
            raise ValueError(f"keep: {self.keep!r} is not one of last, best")


def device_and_precision(name: str = "auto", precision: str = "auto"):
    """(torch device, autocast dtype or None, whether a GradScaler is needed) for a device name
    (``auto``: CUDA when present, else the CPU) and a precision: ``auto`` is bf16 autocast on CUDA
    (fp16 with a GradScaler where bf16 is absent) with TF32 matrix products, and float32 on the
    CPU; ``bfloat16`` asks for bf16 autocast on either (on a CPU with AMX or AVX-512 BF16 it runs
    the matrix products in bf16); ``float32`` for none."""
    if name == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    elif name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device is 'cuda' but no CUDA GPU is visible; use 'auto' or 'cpu'")
    else:
        device = torch.device(name)
    if precision not in ("auto", "float32", "bfloat16"):
        raise ValueError(f"precision: {precision!r} is not one of auto, float32, bfloat16")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if precision == "float32" or (precision == "auto" and device.type != "cuda"):
        return device, None, False
    if precision == "bfloat16" or torch.cuda.is_bf16_supported():
        return device, torch.bfloat16, False
    return device, torch.float16, True


def autocast(device, dtype):
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


def _step(model, opt, scaler, loss, grad_clip):
    opt.zero_grad(set_to_none=True)
    params = [p for g in opt.param_groups for p in g["params"]]
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        scaler.step(opt)
        scaler.update()
    else:
        loss.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        opt.step()


def _epoch(job, model, net, opt, sched, scaler, epoch, grad_clip, on_step, step_every, r: Ranks):
    """One pass over the epoch's batches. Returns (summed loss x weight, weight, stars, last lr).
    The losses add up on the model's device and are read back once, at the end of the epoch (and
    every ``step_every`` steps when ``on_step`` wants them): no step waits on the host. With
    several ranks each runs its share of every batch, its mean loss weighted by world x its
    share of the batch's weight (one all-reduce of a scalar), so that DDP's average of the
    ranks' gradients is the gradient of the whole batch's mean. ``net`` is the network as the job
    runs it (``model`` wrapped in DDP or compiled); ``model`` the bare one the optimiser steps."""
    n_batches = max(job.n_batches(), 1)
    device = next(model.parameters()).device
    total, count, stars = torch.zeros((), device=device), torch.zeros((), device=device), 0
    lr_used = opt.param_groups[0]["lr"]
    for i, batch in enumerate(job.batches(epoch)):
        loss, n = job.loss(net, r.shard(batch))
        n = torch.as_tensor(n, dtype=torch.float32, device=device)
        if r.world > 1:
            share = n * r.world / r.sum(n.clone()).clamp(min=1)
            _step(model, opt, scaler, loss * share, grad_clip)
        else:
            _step(model, opt, scaler, loss, grad_clip)
        lr_used = opt.param_groups[0]["lr"]  # before the step: the last one may restart the cycle
        sched.step(epoch + (i + 1) / n_batches)
        total += loss.detach().float() * n
        count += n
        stars += job.stars(batch)  # the global batch's
        step = epoch * n_batches + i + 1
        if on_step and step % step_every == 0:
            on_step(step, float(loss.detach()), lr_used)
    return float(r.sum(total)), float(r.sum(count)), stars, lr_used


def _optimiser(model, schedule: Schedule, param_groups):
    """AdamW over the parameter groups (one learning rate each) and the cosine schedule with warm restarts."""
    lrs = schedule.lr if isinstance(schedule.lr, (list, tuple)) else [schedule.lr]
    groups = param_groups or [[p for p in model.parameters() if p.requires_grad]]
    if len(groups) != len(lrs):
        raise ValueError(f"{len(groups)} parameter groups but {len(lrs)} learning rates")
    fused = all(p.is_cuda for g in groups for p in g)  # one kernel for the whole update on CUDA
    opt = torch.optim.AdamW(
        [{"params": g, "lr": lr} for g, lr in zip(groups, lrs)], weight_decay=schedule.weight_decay, fused=fused or None
    )
    sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=schedule.cycle_epochs or schedule.epochs, eta_min=schedule.lr_min)
    return opt, sched


def _log_epoch(name: str, epochs: int, row: dict, eta_s: float):
    """One line of progress: the epoch's losses, learning rate, rate and the time left."""
    val = row["val_loss"]
    log.info(
        "%s %4d/%d  train %.4f  val %s  lr %.2e  %8.0f stars/s  ETA %s",
        name,
        row["epoch"] + 1,
        epochs,
        row["train_loss"],
        f"{val:.4f}" if math.isfinite(val) else "none",  # none: the job has no validation stars
        row["lr"],
        row["stars_per_s"],
        time.strftime("%H:%M:%S", time.gmtime(eta_s)),
    )


def fit(
    out_dir,
    model,
    job: Job,
    schedule: Schedule,
    signature: str,
    *,
    param_groups=None,
    scaler=None,
    net=None,
    name: str = "epoch",
    resume: bool = True,
    stop_after_epoch: int | None = None,
    on_epoch: Callable | None = None,
    on_step: Callable | None = None,
    step_every: int = 10,
    log_every: int = 1,
):
    """Train ``model`` (already on its device) on ``job``; writes ``history.csv``, ``last.pt`` and
    ``checkpoints/`` in ``out_dir`` and returns (model, history). ``param_groups``: lists of
    parameters, one per entry of ``schedule.lr`` (default: every parameter that requires a gradient).
    ``stop_after_epoch`` ends the run early (as an interruption would), leaving a resumable checkpoint.
    ``net``: the network as the job runs it (``model`` wrapped in DDP among data-parallel ranks, or
    compiled; default ``model``), ``model`` the bare network whose weights are saved; callbacks,
    files and progress are rank 0's. Models call ``run``, which sets all this up."""
    out = Path(out_dir)
    r = ranks()
    net = model if net is None else net
    if not r.main:  # only rank 0 reports
        on_epoch = on_step = None
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    opt, sched = _optimiser(model, schedule, param_groups)
    start, history = resume_from(out / "last.pt", signature, model, opt, sched, scaler, resume)
    if schedule.keep == "best" and r.main:
        drop_stale_best(out / "best.pt", start)
    for row in history if on_epoch else ():
        on_epoch(row)
    model.train()
    t_run = time.perf_counter()
    for epoch in range(start, schedule.epochs):
        t0 = time.perf_counter()
        total, count, stars, lr_used = _epoch(job, model, net, opt, sched, scaler, epoch, schedule.grad_clip, on_step, step_every, r)
        dt = time.perf_counter() - t0
        model.eval()
        with torch.no_grad():
            val = job.validation_loss(net)
        model.train()
        row = {"epoch": epoch, "train_loss": total / max(count, 1), "val_loss": val, "lr": lr_used}
        row |= {"seconds": round(dt, 3), "stars_per_s": round(stars / max(dt, 1e-9), 1)}
        history.append(row)
        if on_epoch:
            on_epoch(row)
        eta = (time.perf_counter() - t_run) / (epoch + 1 - start) * (schedule.epochs - epoch - 1)
        final = epoch + 1 == schedule.epochs
        stopping = stop_after_epoch is not None and epoch >= stop_after_epoch
        if r.main:
            if (epoch + 1) % log_every == 0 or final:
                _log_epoch(name, schedule.epochs, row, eta)
            write_history(out / "history.csv", history)
            if schedule.keep == "best":
                keep_if_best(out / "best.pt", model, history, epoch)
            if final or stopping or (epoch + 1) % max(schedule.checkpoint_every, 1) == 0:
                checkpoint(out, run_state(model, opt, sched, scaler, epoch, history, signature), epoch)
        r.barrier()  # no rank runs ahead of rank 0's checkpoint
        if stopping and not final:
            log.info("stopping after %s %d as asked; resume to continue", name, epoch + 1)
            return model, history
    if history and start == schedule.epochs and r.main:  # a resumed run that had already finished: the loop did not write it
        write_history(out / "history.csv", history)
    if schedule.keep == "best":
        if not (out / "best.pt").exists():
            raise RuntimeError(f"{out}: keep is 'best' but no epoch had a finite validation loss (no validation stars?); use keep: last")
        model.load_state_dict(trained_weights(out, "best"))
    return model, history


# -- the one entry: a model's training set up, run and finished -----------------------------------
@dataclass(frozen=True)
class Setup:
    """Where and how a training runs, whichever model it is. ``Setup.of(settings)`` reads these
    fields from a model's settings by name; one its settings lack keeps the value here."""

    device: str = "auto"  # auto | cpu | cuda
    precision: str = "auto"  # auto | float32 | bfloat16 (device_and_precision)
    threads: int = 0  # CPU threads of the job (0: torch's default), shared by its ranks
    processes: int = 1  # data-parallel ranks (pipeline/distributed.py)
    seed: int = 0  # torch's seed: the weights' initialisation
    compile: str = "off"  # torch.compile the network: auto (on CUDA), on, off

    @classmethod
    def of(cls, settings, **fixed) -> Setup:
        return cls(**{f.name: getattr(settings, f.name) for f in fields(cls) if hasattr(settings, f.name)} | fixed)


@dataclass(frozen=True)
class Place:
    """What ``run`` set up before the model's ``prepare``: its device, autocast dtype and ranks."""

    device: torch.device
    amp_dtype: torch.dtype | None
    ranks: Ranks


@dataclass
class Training:
    """What a model's ``prepare`` gives ``run``: the bare network (``run`` moves it to the device
    and wraps it), its job and schedule, the run's signature, and what rank 0 writes once every
    epoch is done (``finish(model)``: the model folder's files)."""

    model: torch.nn.Module
    job: Job
    schedule: Schedule
    signature: str
    param_groups: list | None = None
    finish: Callable | None = None
    name: str = "epoch"
    log_every: int = 1


def compiled(model, setting: str, device):
    """The network's forward through torch.compile (``on``; ``auto``: on CUDA, where it was
    measured to pay; on 2 CPU cores its compile time outweighs the gain of a short run)."""
    if setting not in ("auto", "on", "off"):
        raise ValueError(f"train.compile: {setting!r} is not one of auto, on, off")
    if setting == "on" or (setting == "auto" and device.type == "cuda"):
        return torch.compile(model, dynamic=True)
    return model


def run(
    prepare: Callable[[Place], Training],
    setup: Setup,
    out_dir,
    *,
    ranks_entry: tuple[str, dict] | None = None,
    resume: bool = True,
    stop_after_epoch: int | None = None,
    on_epoch: Callable | None = None,
    on_step: Callable | None = None,
    step_every: int = 10,
):
    """Train one model: returns (its trained network, the history). With ``setup.processes`` > 1
    outside torchrun, launches the ranks instead (``ranks_entry``: ``module:function`` and the JSON
    spec each rank calls it with; it must come back here) and returns (None, the history they
    wrote): the caller loads the weights from ``out_dir`` (``trained_weights``)."""
    out = Path(out_dir)
    if setup.processes > 1 and not distributed.in_ranks():
        if ranks_entry is None:
            raise ValueError(f"{out}: this training runs in one process (processes: {setup.processes})")
        entry, spec = ranks_entry
        return None, distributed.train_in_ranks(entry, spec, setup.processes, setup.threads, f"training {out}", out, on_epoch)
    device, amp_dtype, need_scaler = device_and_precision(setup.device, setup.precision)
    r, device = distributed.start(device)
    r.share_threads(setup.threads)
    torch.manual_seed(setup.seed)
    t = prepare(Place(device, amp_dtype, r))
    model = t.model.to(device)
    model, history = fit(
        out,
        model,
        t.job,
        t.schedule,
        t.signature,
        param_groups=t.param_groups,
        scaler=torch.amp.GradScaler("cuda") if need_scaler else None,
        net=compiled(distributed.wrap(model, r, device), setup.compile, device),
        name=t.name,
        resume=resume,
        stop_after_epoch=stop_after_epoch,
        on_epoch=on_epoch,
        on_step=on_step,
        step_every=step_every,
        log_every=t.log_every,
    )
    if len(history) == t.schedule.epochs and r.main and t.finish is not None:
        t.finish(model)
    r.barrier()  # no rank leaves before rank 0 has written the model
    return model, history
