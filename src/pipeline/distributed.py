"""Data-parallel training with PyTorch's own engine: DistributedDataParallel (DDP) ranks launched
by ``torchrun`` (``torch.distributed.run``), NCCL on CUDA and gloo on the CPU.

How a run with ``processes: N`` goes:
- ``launch`` (called by the rule's script) writes the run's settings to a JSON file and starts
  ``python -m torch.distributed.run ... -m pipeline.distributed <entry> <spec.json>``: with
  ``--standalone`` on one node, or, inside a SLURM allocation of several nodes, on each node
  through ``srun`` with a c10d rendezvous at the first node of the allocation (the environment
  SLURM gives: ``SLURM_JOB_NODELIST``, ``SLURM_NNODES``, ``SLURM_JOB_ID``).
- every rank runs ``<entry>(spec)`` (e.g. ``pipeline.model.train:train_from_spec``), which calls the
  model's training again; inside torchrun ``engine.run`` joins the process group (``start``: one
  device per rank) instead of launching, wraps the network in DDP and trains.
- the engine (pipeline/engine.py) draws every global batch on every rank from the same
  (seed, epoch) stream and gives each rank its share (``Ranks.shard``); each rank's loss is
  weighted by its share of the batch's targets, so DDP's average of the gradients is the
  gradient of the whole batch's mean: N ranks x batch B/N take the steps one process with batch B
  takes. Rank 0 alone writes checkpoints (atomically), the history and the progress lines.

A rank that dies makes torchrun stop the others and exit non-zero; ``launch`` then raises an
error naming the rank and the last good checkpoint (the engine's ``last.pt``, which a rerun
resumes, with this or another number of ranks).
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ranks:
    """This process's place among the ranks of a run (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def shard(self, batch):
        """This rank's share of a global batch (a tensor, or a tuple, list or dict of tensors with
        the stars along the first axis): rows rank * n // world to (rank + 1) * n // world."""
        if self.world == 1:
            return batch
        if isinstance(batch, dict):
            return {k: self.shard(v) for k, v in batch.items()}
        if isinstance(batch, (tuple, list)):
            return type(batch)(self.shard(t) for t in batch)
        n = batch.shape[0]
        return batch[self.rank * n // self.world : (self.rank + 1) * n // self.world]

    def sum(self, x: torch.Tensor) -> torch.Tensor:
        """The sum over the ranks of a tensor (in place; on the rank's device)."""
        if self.world > 1:
            dist.all_reduce(x, op=dist.ReduceOp.SUM)
        return x

    def barrier(self):
        if self.world > 1:
            dist.barrier()

    def share_threads(self, threads: int):
        """Give torch this rank's share of the job's ``threads`` CPU threads (0: torch's default)."""
        if threads:
            torch.set_num_threads(max(threads // self.world, 1))


def in_ranks() -> bool:
    """Whether this process is one of torchrun's ranks (which must not launch ranks again)."""
    return "WORLD_SIZE" in os.environ


def ranks() -> Ranks:
    """The ranks of the process group this process belongs to (one of one when there is none)."""
    if dist.is_available() and dist.is_initialized():
        return Ranks(dist.get_rank(), dist.get_world_size())
    return Ranks()


def start(device: torch.device) -> tuple[Ranks, torch.device]:
    """Join the process group torchrun describes in the environment (RANK, WORLD_SIZE,
    LOCAL_RANK, MASTER_ADDR/PORT): NCCL with one GPU per local rank on CUDA, gloo on the CPU.
    Outside torchrun (no WORLD_SIZE): nothing to join; under torchrun with one rank, a group of
    one (DDP's overhead, measured by benchmarks/bench_data_parallel.py). Returns (ranks, this
    rank's device)."""
    if not in_ranks() or (dist.is_available() and dist.is_initialized()):
        return ranks(), device
    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if local >= torch.cuda.device_count():
            raise RuntimeError(
                f"rank with LOCAL_RANK {local} has no GPU: {torch.cuda.device_count()} visible on this node; "
                "ask for as many GPUs per node as processes per node"
            )
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return ranks(), device


def wrap(model: torch.nn.Module, r: Ranks, device: torch.device) -> torch.nn.Module:
    """The model as each rank runs it: DDP (gradients averaged across the ranks in the backward
    pass, rank 0's initial weights broadcast to all) among torchrun's ranks, else itself."""
    if not (dist.is_available() and dist.is_initialized()):
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def stop():
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def launcher(processes: int, env=None) -> list[str]:
    """The torchrun command line for ``processes`` ranks per node: standalone on one node, or
    through srun with a c10d rendezvous across the nodes of a SLURM allocation."""
    env = os.environ if env is None else env
    run = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={processes}"]
    nodes = int(env.get("SLURM_NNODES", "1") or 1)
    if nodes <= 1:
        return run + ["--standalone", "--nnodes=1"]
    first = subprocess.run(
        ["scontrol", "show", "hostnames", env["SLURM_JOB_NODELIST"]], capture_output=True, text=True, check=True
    ).stdout.split()[0]
    rdzv = [
        f"--nnodes={nodes}",
        "--rdzv-backend=c10d",
        f"--rdzv-endpoint={first}:29500",
        f"--rdzv-id={env.get('SLURM_JOB_ID', 'pipeline')}",
    ]
    return ["srun", f"--nodes={nodes}", "--ntasks-per-node=1", *run, *rdzv]


def failure(returncode: int, stderr: str, checkpoint=None) -> str:
    """What went wrong, from torchrun's report: the failing rank, its exit code and its error."""
    lines = stderr.splitlines()
    root = next((i for i, ln in enumerate(lines) if ln.startswith("Root Cause")), 0)  # torchrun's first failure
    summary = [" ".join(ln.split()) for ln in lines[root:] if re.match(r"\s*(rank|exitcode)\s*:", ln)][:2]
    errors = [ln.strip() for ln in lines if re.match(r"^[\w.]*(Error|Exception|Interrupt)\b.*", ln) and "ChildFailedError" not in ln]
    where = (
        f"; the last good checkpoint, which a rerun resumes (with any number of ranks): {checkpoint}"
        if checkpoint and Path(checkpoint).exists()
        else ""
    )
    told = "first failure: " + ", ".join(summary + errors[-1:]) if summary or errors else stderr.strip()[-1500:]
    return f"a training rank failed (torchrun exit {returncode}){where}. {told}"


def launch(entry: str, spec: dict, processes: int, threads_per_rank: int, what: str, checkpoint: Path | None = None):
    """Run ``entry`` (``module:function``, called with ``spec``) as ``processes`` DDP ranks per
    node and wait for them; each rank gets ``threads_per_rank`` CPU threads. Their output goes
    line by line to this process's log (the rule's). Raises with the failing rank's message when one fails.
    The spec is written beside the checkpoint (on a cluster, a file system every node sees)."""
    folder = Path(checkpoint).parent if checkpoint else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix=".ranks_", dir=folder, delete=False) as f:
        json.dump(spec, f)
        spec_path = f.name
    env = {**os.environ, "OMP_NUM_THREADS": str(max(threads_per_rank, 1))}
    cmd = [*launcher(processes, env), "-m", "pipeline.distributed", entry, spec_path]
    log.info("%s: %d ranks (%d threads each): %s", what, processes, threads_per_rank, " ".join(cmd))
    ranks_log, lines = logging.getLogger("pipeline.ranks"), []
    try:
        with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1) as proc:
            for line in proc.stdout:  # the ranks' progress and errors, into this job's log as they come
                lines.append(line)
                ranks_log.info("%s", line.rstrip())
    finally:
        os.unlink(spec_path)
    if proc.returncode != 0:
        raise RuntimeError(f"{what}: {failure(proc.returncode, ''.join(lines), checkpoint)}")


def train_in_ranks(entry: str, spec: dict, processes: int, threads: int, what: str, out: Path, on_epoch=None) -> list[dict]:
    """The training set-up every model shares when it runs as DDP ranks: ``entry`` (one rank's
    training, called with ``spec``) launched as ``processes`` ranks sharing ``threads`` CPU threads
    (0: torch's count), writing into ``out``; returns the history the ranks wrote there, after calling
    ``on_epoch`` with each row (the ranks log nothing to a tracker)."""
    import pandas as pd

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    per_rank = max((threads or torch.get_num_threads()) // processes, 1)
    launch(entry, spec, processes, per_rank, what, checkpoint=out / "last.pt")
    history = pd.read_csv(out / "history.csv").to_dict("records") if (out / "history.csv").exists() else []
    for row in history if on_epoch else ():
        on_epoch(row)
    return history


def main(argv=None):
    """A rank: ``python -m pipeline.distributed module:function spec.json``."""
    entry, spec_path = (argv or sys.argv[1:])[:2]
    module, function = entry.split(":")
    logging.basicConfig(
        level=logging.INFO if int(os.environ.get("RANK", "0")) == 0 else logging.WARNING,
        format=f"rank {os.environ.get('RANK', '0')} %(levelname)s %(name)s: %(message)s",  # the launcher's log adds the time
    )
    spec = json.loads(Path(spec_path).read_text())
    try:
        getattr(importlib.import_module(module), function)(spec)
    finally:
        stop()


if __name__ == "__main__":
    main()
