"""One results folder, one run: a lock in ``paths.results`` itself.

Snakemake's own lock lives in the working folder (``.snakemake/locks``), so two invocations from two
checkouts or two working folders would both write one results folder (on a cluster, a shared scratch
folder): the second rewrites the token store under the first's training. This lock lives in the
results folder whatever the working folder is. The workflow takes it in ``onstart`` (after the DAG is
built, before the first job; dry runs never take it) and gives it back in ``onsuccess``/``onerror``.

A lock whose process is gone (same host, the pid no longer runs, or runs a process started after the
lock) is cleared with a message; a lock held from another host can only be judged by the user:
``snakemake --unlock`` (with the same configuration) clears it.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import psutil

from ..io.atomic import pid_alive

LOCK_NAME = ".pipeline.lock"


class ResultsLocked(RuntimeError):
    """Another invocation holds the results folder."""


def lock_path(results) -> Path:
    return Path(results) / LOCK_NAME


def _holder(workdir) -> dict:
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "start": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "start_unix": time.time(),
        "workdir": str(Path(workdir).resolve()),
    }


def _process_started_unix(pid: int) -> float | None:
    """When process ``pid`` of this machine started (seconds since the epoch), or None when none runs."""
    if not pid_alive(pid):
        return None
    try:
        proc = psutil.Process(pid)
        return None if proc.status() == psutil.STATUS_ZOMBIE else proc.create_time()
    except psutil.NoSuchProcess:
        return None
    except psutil.Error:  # access denied: it runs, as another user
        return 0.0


def is_stale(holder: dict) -> bool:
    """True when the holder ran on this host and its process is gone (or the pid is another process's now)."""
    if holder.get("host") != socket.gethostname():
        return False
    started = _process_started_unix(int(holder.get("pid", -1)))
    if started is None:
        return True
    return started > float(holder.get("start_unix", float("inf"))) + 2.0  # the pid was reused since


def describe(holder: dict) -> str:
    return f"pid {holder.get('pid')} on host {holder.get('host')}, started {holder.get('start')}, working folder {holder.get('workdir')}"


def read_holder(results) -> dict | None:
    path = lock_path(results)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"host": "?", "pid": "?", "start": "?", "workdir": f"? (unreadable lock file {path})"}


def acquire(results, workdir, log=print) -> dict:
    """Take the lock of ``results`` for this process; raise ResultsLocked naming the holder if another
    live invocation has it. A stale lock is cleared with a message through ``log``."""
    Path(results).mkdir(parents=True, exist_ok=True)
    results = Path(results).resolve()
    path = lock_path(results)
    me = _holder(workdir)
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = read_holder(results)
            if holder is None:
                continue  # released in between
            if holder.get("host") == me["host"] and holder.get("pid") == me["pid"]:
                return holder  # this process took it already
            if is_stale(holder):
                log(f"results lock: cleared the stale lock of {path} ({describe(holder)}: that process is gone)")
                path.unlink(missing_ok=True)
                continue
            raise ResultsLocked(
                f"the results folder {results} is in use by another run ({describe(holder)}). "
                f"Wait for it to end, or use another paths.results; if that run is dead (its host can't say), "
                f"`snakemake --unlock` with the same configuration clears the lock ({path})."
            ) from None
        with os.fdopen(fd, "w") as f:
            json.dump(me, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        return me
    raise ResultsLocked(f"could not take the lock {path}: it changed hands three times while trying")


def release(results) -> bool:
    """Give the lock back if this process holds it; True when a lock was removed."""
    holder = read_holder(results)
    if holder and holder.get("host") == socket.gethostname() and holder.get("pid") == os.getpid():
        lock_path(results).unlink(missing_ok=True)
        return True
    return False


def clear(results, log=print) -> bool:
    """``snakemake --unlock``: remove the lock whoever holds it; True when there was one."""
    holder = read_holder(results)
    if holder is None:
        return False
    lock_path(results).unlink(missing_ok=True)
    log(f"results lock: removed {lock_path(results)} ({describe(holder)})")
    return True
