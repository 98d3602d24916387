"""Data-parallel training (DDP through torchrun, gloo on this CPU): N ranks of batch B/N take the
steps of one process with batch B; checkpoints resume with another number of ranks; a rank that
dies fails the job with a clear error and leaves the last good checkpoint."""

import os
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import torch

from pipeline.model.model import preset
from pipeline.model.train import TrainConfig, train
from test_model import _tiny_store

HERE = Path(__file__).resolve().parent
# batches drawn within the store's chunks (resident: stream, the way for stores larger than memory), 2 epochs, one CPU thread per rank
CFG = TrainConfig(epochs_per_cycle=2, cycles=1, batch_size=64, checkpoint_every=1, seed=1, resident="stream", threads=1)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The store and one process's uninterrupted run (1 thread: bit for bit reproducible)."""
    tmp = tmp_path_factory.mktemp("ddp")
    store = _tiny_store(tmp, n=600)
    model, history = train(store, tmp / "one", preset("tiny"), CFG, resume=False)
    return store, model, history


def _assert_same_weights(a, b, atol=1e-5):
    for (k, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        torch.testing.assert_close(x, y, rtol=0, atol=atol, msg=k)


def test_data_parallel_two_ranks_end_with_the_weights_of_one_process(reference, tmp_path):
    store, one, h_one = reference
    two, h_two = train(store, tmp_path / "two", preset("tiny"), replace(CFG, processes=2, threads=2), resume=False)
    _assert_same_weights(one, two)
    assert len(h_two) == len(h_one) == 2
    for a, b in zip(h_one, h_two):  # the epoch's loss and the validation, summed over the ranks
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-5)
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-5)
    # rank 0 alone wrote the model folder, as one process does
    written = pd.read_csv(tmp_path / "two" / "history.csv")
    assert len(written) == 2 and (tmp_path / "two" / "model.pt").exists() and (tmp_path / "two" / "config.json").exists()


def test_data_parallel_run_interrupted_and_resumed_with_one_rank_ends_where_an_uninterrupted_run_ends(reference, tmp_path):
    store, one, _ = reference
    out = tmp_path / "cut"
    _, h = train(store, out, preset("tiny"), replace(CFG, processes=2, threads=2), resume=False, stop_after_epoch=0)
    assert len(h) == 1 and (out / "last.pt").exists() and not (out / "model.pt").exists()
    resumed, h = train(store, out, preset("tiny"), CFG, resume=True)  # one process, another world size
    assert len(h) == 2
    _assert_same_weights(one, resumed)


def test_data_parallel_a_dying_rank_fails_the_job_with_a_clear_error(reference, tmp_path, monkeypatch):
    store, _, _ = reference
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    out = tmp_path / "dies"
    cfg = replace(CFG, processes=2, threads=2)
    spec_extra = {"die_rank": 1, "die_epoch": 1}
    import pipeline.model.train as train_module

    real_launch = train_module.distributed.launch
    dying = "data_parallel_entries:train_with_a_dying_rank"
    monkeypatch.setattr(
        train_module.distributed, "launch", lambda entry, spec, *a, **k: real_launch(dying, {**spec, **spec_extra}, *a, **k)
    )
    with pytest.raises(RuntimeError, match="a training rank failed") as err:
        train(store, out, preset("tiny"), cfg, resume=False)
    message = str(err.value)
    assert "last good checkpoint" in message and str(out / "last.pt") in message
    assert "rank" in message and "exitcode" in message, message
    # the last good checkpoint is epoch 1's, whole, and nothing claims a finished model
    state = torch.load(out / "last.pt", map_location="cpu", weights_only=False)
    assert state["epoch"] == 0 and not (out / "model.pt").exists()


def test_data_parallel_launcher_is_standalone_on_one_node_and_a_c10d_rendezvous_across_nodes(monkeypatch):
    from types import SimpleNamespace

    from pipeline import distributed

    one = distributed.launcher(4, {"SLURM_NNODES": "1"})
    assert one[1:] == ["-m", "torch.distributed.run", "--nproc-per-node=4", "--standalone", "--nnodes=1"]
    asked = []
    monkeypatch.setattr(distributed.subprocess, "run", lambda cmd, **k: asked.append(cmd) or SimpleNamespace(stdout="gpu017\ngpu018\n"))
    cmd = distributed.launcher(4, {"SLURM_NNODES": "2", "SLURM_JOB_NODELIST": "gpu[017-018]", "SLURM_JOB_ID": "4242"})
    assert asked == [["scontrol", "show", "hostnames", "gpu[017-018]"]]
    assert cmd[:3] == ["srun", "--nodes=2", "--ntasks-per-node=1"]
    assert cmd[-4:] == ["--nnodes=2", "--rdzv-backend=c10d", "--rdzv-endpoint=gpu017:29500", "--rdzv-id=4242"]
