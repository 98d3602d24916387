"""Rank functions for tests/test_data_parallel.py, run by torchrun (``python -m pipeline.distributed``)."""

import os

from pipeline.model import train as train_module


def train_with_a_dying_rank(spec):
    """The training of ``train_from_spec``, where rank ``spec["die_rank"]`` dies (exit 1, as a
    killed or crashed process would) when it starts epoch ``spec["die_epoch"]``."""
    batches = train_module.TokenJob.batches

    def dying(self, epoch):
        if int(os.environ["RANK"]) == spec["die_rank"] and epoch == spec["die_epoch"]:
            os._exit(1)
        return batches(self, epoch)

    train_module.TokenJob.batches = dying
    train_module.train_from_spec(spec)
