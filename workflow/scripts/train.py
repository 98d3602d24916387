"""Rule train: token store -> results/models/<name>/ (from scratch, or from another model's weights)."""

from pathlib import Path

from pipeline.model.mlflow_model import log_pyfunc
from pipeline.model.train import configs_of, train
from pipeline.tokens.store import open_token_store
from pipeline.workflow.tracking import rule_run

sm = snakemake  # noqa: F821
with rule_run(sm) as run:
    log = run.log
    n_tokens = len(open_token_store(sm.input.tokens).attrs["vocabulary"])  # 118, or more with extra tokens
    init = Path(sm.input.init[0]).parent if sm.input.get("init") else None
    model_cfg, cfg = configs_of(sm.params.train, n_tokens, threads=sm.threads, init_from=init)
    out = Path(sm.output.model).parent
    train(
        sm.input.tokens,
        out,
        model_cfg,
        cfg,
        resume=True,
        init_from=init,
        on_epoch=lambda row: run.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=row["epoch"]),
        on_step=lambda step, loss, lr: run.log_metrics({"step_train_loss": loss, "step_lr": lr}, step=step),
    )
    run.log_model(out, log_pyfunc)
