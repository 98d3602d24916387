"""Rule evaluate_spectrafm: Table 1, the [Fe/H] transfer test and the attention read-out -> metrics.json + predictions.parquet."""

import time
from pathlib import Path

import pandas as pd
import torch

from pipeline.evaluate.registry import TASKS
from pipeline.evaluate.settings import task_settings
from pipeline.evaluate.spectrafm import spectrafm
from pipeline.io.atomic import write_json
from pipeline.io.tables import write_tables
from pipeline.workflow.tracking import rule_run

sm = snakemake  # noqa: F821
with rule_run(sm) as run:
    log = run.log
    torch.set_num_threads(sm.threads)  # the threads the rule asks for, no more
    t0 = time.perf_counter()
    models = {Path(p).parent.name: Path(p).parent for p in sm.input.models}
    metrics, tables = spectrafm(sm.input.store, models, task_settings("spectrafm", sm.params.settings), pd.read_csv(sm.input.lines))
    metrics = {
        "task": "spectrafm",
        "issue_letter": TASKS["spectrafm"].letter,
        "paper_figures": TASKS["spectrafm"].paper_figures,
        "seconds": round(time.perf_counter() - t0, 2),
        **metrics,
    }
    write_tables(sm.output.predictions, tables)
    write_json(metrics, sm.output.metrics)
