"""Writing outputs whole or not at all: the one way this pipeline writes a file or a folder.

``atomic_path(path)`` yields a temporary name beside ``path`` (``.<name>.tmp-<pid>``); when the
block ends normally the temporary file or folder replaces ``path`` in one rename, and when it
fails the temporary is removed, so a killed job, a full disk or an exception never leaves
anything that a rerun (or Snakemake) would take for a finished output. A full disk is reported
as such, naming the file and the free space, instead of the writer's own message (torch says
"unexpected pos ... vs ...").
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
from pathlib import Path

FULL_DISK_FREE_BYTES = 1 << 20  # a failed write with less free space than this is taken for a full disk


class DiskFullError(OSError):
    """No space left on the device while writing an output."""


def _remove(p: Path):
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    elif p.exists() or p.is_symlink():
        with contextlib.suppress(OSError):
            p.unlink()


def _is_disk_full(exc: BaseException, folder: Path) -> bool:
    e = exc
    while e is not None:
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        e = e.__cause__ or e.__context__
    with contextlib.suppress(OSError):
        return shutil.disk_usage(folder).free < FULL_DISK_FREE_BYTES
    return False


def temporary_sibling(path) -> Path:
    path = Path(path)
    return path.parent / f".{path.name}.tmp-{os.getpid()}"


def pid_alive(pid: int) -> bool:
    """Whether a process of this machine with that id exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(path) -> list[Path]:
    """The temporaries of ``path`` left by writers that were killed (kill -9, a lost node): their
    process is gone. Those of live writers are left alone."""
    path = Path(path)
    stale = []
    for tmp in path.parent.glob(f".{path.name}.tmp-*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not pid_alive(int(pid)):
            _remove(tmp)
            stale.append(tmp)
    return stale


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path to write ``path`` to (a file, or a folder the caller creates)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(path)
    _remove(tmp)
    remove_stale_temporaries(path)
    try:
        yield tmp
        if tmp.is_dir() and path.is_dir():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException as exc:
        full = isinstance(exc, Exception) and _is_disk_full(exc, path.parent)
        _remove(tmp)
        if full:
            free = shutil.disk_usage(path.parent).free
            raise DiskFullError(
                errno.ENOSPC,
                f"no space left on device while writing {path} "
                f"({free / 1e6:.1f} MB free under {path.parent} after removing the partial file); "
                "free some space or point paths.results elsewhere, then rerun",
            ) from exc
        raise


def write_json(obj, path):
    """Write JSON through a temporary file and a rename, so a reader never sees half a file."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=float) + "\n")


def write_text(text: str, path):
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_parquet(df, path, **kwargs):
    """A DataFrame as Parquet (no index), atomically."""
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False, **kwargs)


def torch_save(obj, path):
    """torch.save, atomically (checkpoints and model weights)."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
