"""engine.run, the one entry every model trains through: what it sets up before the model's
``prepare``, what it leaves to rank 0 at the end, and how a model's settings reach it."""

import pytest
import torch

from pipeline import engine
from pipeline.model.settings import TrainConfig


class LineJob:
    """y = 3 x - 1 from 64 points, in 4 batches drawn from (seed, epoch)."""

    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.x = torch.rand(64, 1, generator=g)
        self.y = 3 * self.x - 1

    def batches(self, epoch):
        order = torch.randperm(64, generator=torch.Generator().manual_seed(epoch))
        return (order[i : i + 16] for i in range(0, 64, 16))

    def n_batches(self):
        return 4

    def stars(self, batch):
        return len(batch)

    def loss(self, model, batch):
        return ((model(self.x[batch]) - self.y[batch]) ** 2).mean(), len(batch)

    def validation_loss(self, model):
        return float(((model(self.x) - self.y) ** 2).mean())


def _line(tmp_path, name, seed=0, stop_after_epoch=None, calls=None):
    calls = [] if calls is None else calls

    def prepare(place):
        calls.append(("prepare", place.device.type, place.amp_dtype, place.ranks.world, torch.get_num_threads()))
        return engine.Training(
            torch.nn.Linear(1, 1),  # initialised after run seeded torch
            LineJob(),
            engine.Schedule(epochs=3, lr=0.1),
            f"line-{seed}",
            finish=lambda model: calls.append(("finish", float(model.weight))),
        )

    setup = engine.Setup(device="cpu", threads=1, seed=seed)
    model, history = engine.run(prepare, setup, tmp_path / name, stop_after_epoch=stop_after_epoch)
    return model, history, calls


def test_run_seeds_sets_threads_and_device_before_prepare_and_lets_rank_0_finish_once(tmp_path):
    threads = torch.get_num_threads()
    try:
        a, history, calls = _line(tmp_path, "a", seed=4)
        b, _, _ = _line(tmp_path, "b", seed=4)
        c, _, _ = _line(tmp_path, "c", seed=5)
    finally:
        torch.set_num_threads(threads)
    assert calls[0] == ("prepare", "cpu", None, 1, 1)  # float32 on the CPU, one rank, the setup's one thread
    assert [c[0] for c in calls] == ["prepare", "finish"] and calls[1][1] == pytest.approx(float(a.weight))
    assert len(history) == 3 and history[-1]["val_loss"] < history[0]["val_loss"]
    assert torch.equal(a.weight, b.weight)  # the seed is run's: the same initialisation and steps
    assert not torch.equal(a.weight, c.weight)


def test_a_run_stopped_early_writes_no_final_files_and_its_resumption_does(tmp_path):
    threads = torch.get_num_threads()
    try:
        _, history, calls = _line(tmp_path, "cut", stop_after_epoch=0)
        assert len(history) == 1 and [c[0] for c in calls] == ["prepare"]
        assert set(engine.trained_weights(tmp_path / "cut")) == {"weight", "bias"}
        resumed, history, calls = _line(tmp_path, "cut")
        whole, _, _ = _line(tmp_path, "whole")
    finally:
        torch.set_num_threads(threads)
    assert len(history) == 3 and [c[0] for c in calls] == ["prepare", "finish"]
    assert torch.equal(resumed.weight, whole.weight)  # exact with one thread


def test_a_training_of_one_process_refuses_ranks_by_name(tmp_path):
    with pytest.raises(ValueError, match=r"runs in one process \(processes: 2\)"):
        engine.run(lambda place: None, engine.Setup(processes=2), tmp_path / "x")


def test_setup_reads_a_models_settings_by_name():
    from pipeline.spectrafm.train import StageConfig

    setup = engine.Setup.of(TrainConfig(threads=3, seed=5, compile="on", processes=2, precision="bfloat16"))
    assert setup == engine.Setup(device="auto", precision="bfloat16", threads=3, processes=2, seed=5, compile="on")
    stage = engine.Setup.of(StageConfig(seed=2, device="cpu"), precision="float32")
    assert stage == engine.Setup(device="cpu", precision="float32", threads=0, processes=1, seed=2, compile="off")


def test_the_sampler_settings_are_the_training_settings_and_validation_asks_plain_questions():
    cfg = TrainConfig(batch_size=64, seed=7, targets_per_star=3, target_weights={"teff": 9}, identity_fraction=0.2, resident="memory")
    train, val = cfg.sampling(), cfg.sampling(validation=True)
    assert (train.batch_size, train.seed, train.targets_per_star, train.shuffle, train.resident) == (64, 7, 3, True, "memory")
    assert train.target_weights == {"teff": 9} and train.identity_fraction == 0.2
    assert (val.seed, val.shuffle, val.targets_per_star, val.target_weights, val.identity_fraction) == (8, False, 1, None, 1.0)
    assert val.held_out == train.held_out and val.stars_with == train.stars_with and val.batch_size == 64
    assert TrainConfig(num_workers=2, resident="memory").sampling().resident == "stream"  # workers read the store


class OverfitJob(LineJob):
    """Trains towards y = 3 x - 1 but validates against y = 0.5 x: the validation loss falls while the
    weight passes 0.5 (from 0 by Adam steps of ~0.05: epoch 2) and rises after, the shape of a fine-tune
    that overfits its training stars."""

    def validation_loss(self, model):
        return float(((model(self.x) - 0.5 * self.x) ** 2).mean())


def _fit(tmp_path, keep, epochs=8, stop_after_epoch=None):
    torch.manual_seed(0)
    model = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(model.weight)
    schedule = engine.Schedule(epochs=epochs, lr=0.05, keep=keep)
    return engine.fit(tmp_path / "fit", model, OverfitJob(), schedule, "overfit", stop_after_epoch=stop_after_epoch)


def test_keep_best_ends_with_the_weights_of_the_lowest_validation_loss(tmp_path):
    last, history = _fit(tmp_path / "last", "last")
    best, history_b = _fit(tmp_path / "best", "best")
    vals = [row["val_loss"] for row in history_b]
    lowest = min(range(len(vals)), key=vals.__getitem__)
    assert 0 < lowest < len(vals) - 1 and vals[-1] > vals[lowest]  # the toy overfits: the lowest is not the last epoch
    at_lowest = torch.load(tmp_path / "best" / "fit" / "checkpoints" / f"epoch_{lowest + 1:04d}.pt", weights_only=False)
    assert torch.equal(best.weight, at_lowest["model"]["weight"])
    assert torch.equal(engine.trained_weights(tmp_path / "best" / "fit", "best")["weight"], best.weight)
    assert torch.equal(last.weight, engine.trained_weights(tmp_path / "best" / "fit")["weight"])  # last.pt: still the last epoch
    assert not torch.equal(best.weight, last.weight)


def test_keep_best_survives_a_resumption_and_refuses_unknown_values(tmp_path):
    _fit(tmp_path / "cut", "best", stop_after_epoch=4)  # the lowest validation loss lies before the cut
    resumed, _ = _fit(tmp_path / "cut", "best")
    whole, _ = _fit(tmp_path / "whole", "best")
    assert torch.equal(resumed.weight, whole.weight)
    with pytest.raises(ValueError, match="keep"):
        engine.Schedule(epochs=1, lr=0.1, keep="first")
