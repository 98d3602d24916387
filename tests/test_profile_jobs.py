"""benchmarks/profile_jobs.py: a py-spy profile's samples counted into a job's parts."""

import pytest

from conftest import benchmark_module


@pytest.fixture(scope="module")
def profile_jobs():
    return benchmark_module("profile_jobs")


def test_samples_are_counted_into_parts_and_idle_workers_left_out(profile_jobs, tmp_path):
    raw = tmp_path / "raw.txt"
    raw.write_text(
        "\n".join(
            [
                "<module> (x.py:1);fit (engine.py:2);_step (engine.py:3);TokenJob.loss (train.py:4) 30",
                "<module> (x.py:1);fit (engine.py:2);_step (engine.py:3);Tensor.backward (_tensor.py:5) 50",
                "<module> (x.py:1);fit (engine.py:2);TokenJob.validation_loss (train.py:6) 10",
                "<module> (x.py:1);_find_and_load (<frozen>:7) 10",
                "Thread._bootstrap (threading.py:1);Thread.run (threading.py:2);_worker (thread.py:3) 40",  # idle pool
                "Thread._bootstrap (threading.py:1);Thread.run (threading.py:2);Booster.update (core.py:9) 20",
            ]
        )
        + "\n"
    )
    total, parts = profile_jobs.shares(raw)
    assert total == 120  # the idle worker's 40 left out, the worker growing trees counted
    assert parts["backward"] == pytest.approx(50 / 120) and parts["forward (training)"] == pytest.approx(30 / 120)
    assert parts["validation"] == pytest.approx(10 / 120) and parts["imports"] == pytest.approx(10 / 120)
    assert parts["XGBoost trees"] == pytest.approx(20 / 120) and parts["the Cannon"] == 0


def test_every_job_names_a_snippet_that_formats(profile_jobs):
    for name, code in profile_jobs.JOBS.items():
        text = code.format(results="results", out="/tmp/o", threads=2)
        compile(text, name, "exec")  # valid Python once its fields are filled
