"""One results folder, one run (pipeline.workflow.results_lock): the lock names its holder, a dead holder's
lock is cleared with a message, and only the holder gives it back."""

import json
import os
import socket
import subprocess
import sys

import pytest

from pipeline.workflow.results_lock import ResultsLocked, acquire, clear, lock_path, read_holder, release


def _foreign_lock(results, **fields):
    holder = {"host": socket.gethostname(), "pid": 1, "start": "2026-12-04T10:00:00+0000", "start_unix": 0.0, "workdir": "/elsewhere"}
    holder.update(fields)
    results.mkdir(parents=True, exist_ok=True)
    lock_path(results).write_text(json.dumps(holder))
    return holder


def test_the_lock_names_this_process_and_is_given_back(tmp_path):
    holder = acquire(tmp_path / "results", tmp_path)
    on_disk = read_holder(tmp_path / "results")
    assert on_disk == holder and on_disk["pid"] == os.getpid() and on_disk["host"] == socket.gethostname()
    assert on_disk["workdir"] == str(tmp_path.resolve())
    assert acquire(tmp_path / "results", tmp_path) == holder  # taking it again in the same process is a no-op
    assert release(tmp_path / "results") and not lock_path(tmp_path / "results").exists()


def test_a_live_holder_refuses_a_second_run_naming_host_pid_start_and_folder(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        import psutil

        _foreign_lock(tmp_path, pid=sleeper.pid, start_unix=psutil.Process(sleeper.pid).create_time())
        with pytest.raises(ResultsLocked) as err:
            acquire(tmp_path, tmp_path)
        msg = str(err.value)
        for part in (f"pid {sleeper.pid}", socket.gethostname(), "2026-12-04T10:00:00", "/elsewhere", "--unlock"):
            assert part in msg, msg
        assert not release(tmp_path), "only the holder gives the lock back"
        assert lock_path(tmp_path).exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_lock_whose_process_is_gone_is_cleared_with_a_message(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _foreign_lock(tmp_path, pid=dead.pid, start_unix=0.0)
    said = []
    holder = acquire(tmp_path, tmp_path, log=said.append)
    assert holder["pid"] == os.getpid()
    assert len(said) == 1 and "stale" in said[0] and f"pid {dead.pid}" in said[0]


def test_a_reused_pid_does_not_keep_a_lock(tmp_path):
    """The lock's pid runs, but a process that started after the lock was taken: the holder is gone."""
    _foreign_lock(tmp_path, pid=os.getppid(), start_unix=0.0)  # the lock predates every running process
    said = []
    acquire(tmp_path, tmp_path, log=said.append)
    assert said and "stale" in said[0]


def test_another_hosts_lock_is_kept_until_unlock(tmp_path):
    _foreign_lock(tmp_path, host="node-that-is-not-here", pid=12345)
    with pytest.raises(ResultsLocked, match="node-that-is-not-here"):
        acquire(tmp_path, tmp_path)
    said = []
    assert clear(tmp_path, log=said.append) and "node-that-is-not-here" in said[0]
    assert acquire(tmp_path, tmp_path)["pid"] == os.getpid()
    assert not clear(tmp_path / "none", log=said.append)
