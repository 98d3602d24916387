"""Rule train: token store -> results/models/<name>/."""
from pathlib import Path

from pipeline.logs import setup
from pipeline.model.model import preset
from pipeline.model.train import TrainConfig, train

log = setup(snakemake.log[0])  # noqa: F821
sm = snakemake  # noqa: F821
p = dict(sm.params.train)
model_cfg = preset(p.pop("preset", "small"), **(p.pop("model", {}) or {}))
for k in ("name", "gpus"):
    p.pop(k, None)
cfg = TrainConfig.from_dict({**p, "threads": p.get("threads") or sm.threads})
train(sm.input.tokens, Path(sm.output.model).parent, model_cfg, cfg, resume=True)
