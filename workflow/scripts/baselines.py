"""Rule baselines: XGBoost experts for one input set, one per target."""

from pathlib import Path

from pipeline.baselines.xgb import ExpertConfig, run_experts
from pipeline.workflow.tracking import rule_run

sm = snakemake  # noqa: F821
with rule_run(sm) as run:
    log = run.log
    metrics = run_experts(
        sm.input.tokens,
        Path(sm.output.metrics).parent,
        sm.wildcards.expert,
        list(sm.params.targets),
        ExpertConfig(**sm.params.xgboost),
        n_jobs=sm.threads,
    )
    for t, m in metrics.items():
        log.info("%s -> %s: robust scatter %.4g (%d test stars)", sm.wildcards.expert, t, m["robust_scatter"], m["n_test"])
