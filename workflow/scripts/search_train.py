"""Rule search_train: base model + token store -> results/search/ (fine-tuned encoders, test-split database)."""

from pathlib import Path

from pipeline.search.contrastive import SearchConfig, train_search
from pipeline.workflow.tracking import rule_run

sm = snakemake  # noqa: F821
with rule_run(sm) as run:
    log = run.log
    cfg = SearchConfig.from_dict({**sm.params.search, "threads": sm.params.search.get("threads") or sm.threads})
    train_search(
        Path(sm.input.model).parent,
        sm.input.tokens,
        Path(sm.output.model).parent,
        cfg,
        on_epoch=lambda row: run.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=row["epoch"]),
    )
