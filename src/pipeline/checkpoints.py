"""The engine's checkpoints: a run's state (weights, optimiser, schedule, scaler, random state,
history, run signature), resuming from it when the signature matches, the epoch of lowest validation
loss (``best.pt``), ``history.csv`` and the weights a finished training left (``trained_weights``).
Written by rank 0 of ``engine.fit`` only; each file whole or not at all (io.atomic)."""

from __future__ import annotations

import csv
import logging
import math
from pathlib import Path

import torch

from .io.atomic import atomic_path, torch_save

log = logging.getLogger("pipeline.engine")


def run_state(model, opt, sched, scaler, epoch, history, signature):
    return {
        "signature": signature,
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "epoch": epoch,
        "history": history,
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def restore(state, model, opt, sched, scaler):
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    if scaler is not None and state["scaler"]:
        scaler.load_state_dict(state["scaler"])
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])


def write_history(path, history):
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(history[0]))
        w.writeheader()
        w.writerows(history)


def resume_from(last: Path, signature, model, opt, sched, scaler, resume: bool):
    """(first epoch, history) of a run: from ``last`` when it holds a checkpoint of this run's signature."""
    state = torch.load(last, map_location=next(model.parameters()).device, weights_only=False) if resume and last.exists() else None
    if state is not None and state.get("signature") != signature:
        log.warning("%s was written for another configuration, data or code; starting afresh", last)
        state = None
    if state is None:
        return 0, []
    restore(state, model, opt, sched, scaler)
    log.info("resuming from %s at epoch %d", last, state["epoch"] + 1)
    return state["epoch"] + 1, state["history"]


def drop_stale_best(best: Path, start: int):
    """Remove ``best`` (``keep: best``) unless it holds an epoch before ``start``, the one the run resumes at."""
    if best.exists() and (start == 0 or torch.load(best, map_location="cpu", weights_only=False)["epoch"] >= start):
        best.unlink()


def keep_if_best(best: Path, model, history: list, epoch: int):
    """Write ``model``'s weights to ``best`` when this epoch's validation loss is the run's lowest so far."""
    val = history[-1]["val_loss"]
    if math.isfinite(val) and all(val < row["val_loss"] for row in history[:-1] if math.isfinite(row["val_loss"])):
        torch_save({"model": model.state_dict(), "epoch": epoch, "val_loss": val}, best)


def checkpoint(out: Path, state: dict, epoch: int):
    """The run's state after ``epoch`` (0-based): kept as checkpoints/epoch_NNNN.pt and as last.pt, the one a rerun resumes from."""
    torch_save(state, out / "checkpoints" / f"epoch_{epoch + 1:04d}.pt")
    torch_save(state, out / "last.pt")


def trained_weights(out_dir, keep: str = "last") -> dict:
    """The weights a training left in ``out_dir``: its last checkpoint's (the final epoch's once
    it finished; the engine writes ``last.pt`` at the last epoch and when stopped early), or with
    ``keep`` "best" those of its epoch of lowest validation loss (``best.pt``)."""
    name = "best.pt" if keep == "best" else "last.pt"
    return torch.load(Path(out_dir) / name, map_location="cpu", weights_only=False)["model"]
