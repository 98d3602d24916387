"""Rule train: token store -> results/models/<name>/."""
from pathlib import Path

from pipeline.tracking import rule_run
from pipeline.model.model import preset
from pipeline.model.train import TrainConfig, train

sm = snakemake  # noqa: F821
with rule_run(sm) as run:
    log = run.log
    p = dict(sm.params.train)
    model_cfg = preset(p.pop("preset", "small"), **(p.pop("model", {}) or {}))
    for k in ("name", "gpus"):
        p.pop(k, None)
    cfg = TrainConfig.from_dict({**p, "threads": p.get("threads") or sm.threads})
    out = Path(sm.output.model).parent
    train(sm.input.tokens, out, model_cfg, cfg, resume=True,
          on_epoch=lambda row: run.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=row["epoch"]),
          on_step=lambda step, loss, lr: run.log_metrics({"step_train_loss": loss, "step_lr": lr}, step=step))
    run.log_model(out)
