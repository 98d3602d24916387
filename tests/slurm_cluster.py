"""A throw-away one-node SLURM cluster on localhost, for the SLURM profile's integration test.

Uses Debian's ``slurm-wlm`` and ``munge`` (installed with apt when absent and we are root):
munged with its own socket, then slurmctld and slurmd from a slurm.conf written in a temporary
folder (CPUs from nproc, memory from what is free, accounting off). Clients find it through
``SLURM_CONF`` and, because Snakemake's job step drops every ``SLURM_*`` variable before its
inner ``srun``, through a copy at /etc/slurm/slurm.conf as well, which is written only where no
configuration exists and removed again. Everything started is stopped again by pid.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol")
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")


class ClusterUnavailable(RuntimeError):
    """The one-node cluster cannot be made on this machine (the tests skip with this reason)."""


def _which(name):
    return shutil.which(name) or next((str(p) for p in (Path("/usr/sbin") / name,) if p.exists()), None)


def ensure_installed() -> str | None:
    """None when SLURM and munge are (or could be made) available, else why not."""
    if all(_which(b) for b in BINARIES):
        return None
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return "needs Debian's slurm-wlm and munge; installing them needs root and apt-get"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-q", "slurm-wlm", "munge"]
    if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
        if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:
            return "apt-get could not install slurm-wlm and munge (no network or no Debian archive?)"
    missing = [b for b in BINARIES if not _which(b)]
    return f"installed slurm-wlm and munge but {missing} are still missing" if missing else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _mem_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) // 1024
    return 4000


class LocalSlurm:
    """``with LocalSlurm(tmp) as env:`` runs a one-node cluster; ``env`` holds SLURM_CONF for clients."""

    def __init__(self, folder: Path):
        self.dir = Path(folder)
        self.pids: list[tuple[str, int]] = []
        self.started: list[tuple[str, int]] = []  # every daemon this cluster started, kept after stopping
        self.wrote_system_conf = False

    def _start(self, name, cmd, pidfile: Path, env):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{name} did not start: {proc.stderr or proc.stdout}")
        for _ in range(100):
            if pidfile.exists() and pidfile.read_text().strip():
                self.pids.append((name, int(pidfile.read_text().split()[0])))
                self.started.append(self.pids[-1])
                return
            time.sleep(0.1)
        raise RuntimeError(f"{name} wrote no pid file {pidfile}; see {self.dir}")

    def __enter__(self):
        d = self.dir
        for sub in ("state", "spool", "munge"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        host = socket.gethostname().split(".")[0]
        cpus, mem = os.cpu_count() or 1, max(1000, int(_mem_mb() * 0.8))
        conf = d / "slurm.conf"
        conf.write_text(f"""\
ClusterName=pipelinetest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={d / "munge" / "munge.socket"}
CredType=cred/munge
StateSaveLocation={d / "state"}
SlurmdSpoolDir={d / "spool"}
SlurmctldPidFile={d / "slurmctld.pid"}
SlurmdPidFile={d / "slurmd.pid"}
SlurmctldLogFile={d / "slurmctld.log"}
SlurmdLogFile={d / "slurmd.log"}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
MinJobAge=600
SlurmdTimeout=60
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
""")
        env = {**os.environ, "SLURM_CONF": str(conf)}
        self.env = env
        marker = "# written by the pipeline's tests/slurm_cluster.py; removed when the test cluster stops\n"
        if SYSTEM_CONF.exists() and not SYSTEM_CONF.read_text().startswith(marker):
            raise ClusterUnavailable(f"{SYSTEM_CONF} exists: this machine has its own SLURM set-up, which the test leaves alone")
        try:
            SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
            SYSTEM_CONF.write_text(marker + conf.read_text())
            self.wrote_system_conf = True
        except OSError as exc:
            raise ClusterUnavailable(f"cannot write {SYSTEM_CONF} ({exc}); the job steps' srun would find no configuration") from None
        try:
            self._start(
                "munged",
                [
                    _which("munged"),
                    "--force",
                    "--socket",
                    str(d / "munge" / "munge.socket"),
                    "--pid-file",
                    str(d / "munge" / "munged.pid"),
                    "--log-file",
                    str(d / "munge" / "munged.log"),
                    "--seed-file",
                    str(d / "munge" / "munged.seed"),
                ],
                d / "munge" / "munged.pid",
                env,
            )
            self._start("slurmctld", [_which("slurmctld"), "-f", str(conf)], d / "slurmctld.pid", env)
            self._start("slurmd", [_which("slurmd"), "-f", str(conf)], d / "slurmd.pid", env)
            for _ in range(150):  # until the node takes jobs
                out = subprocess.run(["sinfo", "-h", "-o", "%t"], env=env, capture_output=True, text=True).stdout.strip()
                if out in ("idle", "mix", "alloc"):
                    return env
                time.sleep(0.2)
            raise RuntimeError(f"the node never became idle (sinfo says {out!r}); see {d}/slurmctld.log and slurmd.log")
        except BaseException:
            self.__exit__(None, None, None)
            raise

    def log_tail(self, n=3000) -> str:
        return "".join(f"--- {p.name}\n{p.read_text()[-n:]}\n" for p in (self.dir / "slurmctld.log", self.dir / "slurmd.log") if p.exists())

    def __exit__(self, *exc):
        for _name, pid in reversed(self.pids):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            for _ in range(100):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                os.kill(pid, signal.SIGKILL)
        self.pids.clear()
        if self.wrote_system_conf:
            SYSTEM_CONF.unlink(missing_ok=True)
            self.wrote_system_conf = False
        return False
