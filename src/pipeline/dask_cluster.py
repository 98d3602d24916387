"""Where the Dask stages run: threads on the job's own node, or worker jobs on a SLURM cluster.

``dask:`` in the configuration (read from ``snakemake.config``, not a rule parameter: the
results do not depend on where they were computed, so changing it reruns nothing):

    dask:
      cluster: slurm          # local (default) | slurm
      jobs: 4                 # SLURM jobs of Dask workers
      slurm:                  # keyword arguments of dask_jobqueue.SLURMCluster
        queue: YOUR_PARTITION
        account: YOUR_ACCOUNT
        cores: 8
        memory: 16GB
        walltime: "02:00:00"

With ``slurm`` the rule's job starts a scheduler, submits ``jobs`` worker jobs with sbatch, and
cancels them when the stage is done.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field

from .settings import from_dict

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DaskConfig:
    """``dask:``: where the Dask stages run (changing it reruns nothing)."""

    cluster: str = "local"  # local: the job's own threads | slurm: dask-jobqueue worker jobs
    jobs: int = 1  # with slurm: worker jobs to submit
    wait_s: float = 600  # for the first worker
    slurm: dict = field(default_factory=lambda: {"cores": 1, "memory": "2GB", "processes": 1, "walltime": "01:00:00"})


@contextlib.contextmanager
def dask_client(dask_cfg: dict | None):
    """A ``dask.distributed.Client`` on the configured cluster, or None for the job's local scheduler."""
    cfg = from_dict(DaskConfig, dask_cfg, "dask")
    kind = cfg.cluster
    if kind == "local":
        yield None
        return
    if kind != "slurm":
        raise ValueError(f"config: dask.cluster must be 'local' or 'slurm', not {kind!r}")
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError as exc:  # pragma: no cover - pinned in pyproject
        raise RuntimeError("dask.cluster: slurm needs dask-jobqueue (pip install dask-jobqueue)") from exc
    from dask.distributed import Client

    kwargs = dict(cfg.slurm)
    jobs = int(cfg.jobs)
    with SLURMCluster(**kwargs) as cluster:
        log.info("dask: %d SLURM worker jobs (%s)", jobs, ", ".join(f"{k}={v}" for k, v in kwargs.items()))
        cluster.scale(jobs=jobs)
        with Client(cluster) as client:
            client.wait_for_workers(1, timeout=cfg.wait_s)
            yield client
