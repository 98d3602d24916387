"""Rule experiments: the base model's claims beside each training experiment's -> results/eval/experiments.csv."""

from pathlib import Path

from pipeline.evaluate.variants import write_experiments
from pipeline.workflow.tracking import rule_run

sm = snakemake  # noqa: F821
with rule_run(sm) as run:
    log = run.log
    paths = {"base": sm.input.base, **{Path(p).parent.name: p for p in sm.input.claims}}
    table = write_experiments(paths, sm.output[0])
    log.info("experiments: %d claims x %d models", len(table), len(paths))
