"""Rules spectrafm_train (one stage of SpectraFM) and spectrafm_fcnn (the network from scratch)."""

from pathlib import Path

from pipeline.spectrafm.fcnn import train_fcnn
from pipeline.spectrafm.model import FCNNConfig, preset
from pipeline.spectrafm.train import StageConfig, train_stage
from pipeline.workflow.tracking import rule_run

sm = snakemake  # noqa: F821
with rule_run(sm) as run:
    log = run.log
    stage = StageConfig.from_dict({**sm.params.stage, "device": sm.params.device, "threads": sm.threads, "processes": sm.params.processes})
    out = Path(sm.output.model).parent
    curves = lambda row: run.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=row["epoch"])  # noqa: E731
    if sm.rule.startswith("spectrafm_fcnn"):  # the rule or a seed variant's
        train_fcnn(sm.input.store, out, stage, FCNNConfig.from_dict(sm.params.fcnn), on_epoch=curves)
    else:
        init = Path(sm.input.init[0]).parent if sm.input.init else None
        cfg = None if init else preset(sm.params.model["preset"], **(sm.params.model["model"] or {}))
        train_stage(sm.input.store, out, stage, cfg, init_from=init, on_epoch=curves)
