"""The stages a SpectraFM run trains: the configured ones (``spectrafm.stages``) and the paper's
ablation, which the workflow derives from them so that it always repeats ``finetune_fe`` but for
its starting point.

Koblischke & Bovy (2024, Sec. 4.1): "Skipping the first fine-tuning step and directly fine-tuning
on the 100 iron-rich stars leads to similar performance" (iron-poor RMSE 0.256 against 0.232): the
knowledge the [Fe/H] fine-tune needs comes from its own window. ``finetune_fe_direct`` is that run:
``finetune_fe``'s stars, window, schedule and frozen layers, started from the pre-trained model.
"""

from __future__ import annotations

ABLATION = "finetune_fe_direct"  # finetune_fe started from the pre-trained model (no observed fine-tune)


def stage_plan(stages: dict) -> dict:
    """{stage name: settings} of every stage to train: ``stages`` and, when they have a ``pretrain``
    and a ``finetune_fe``, the ablation (finetune_fe's settings with ``init: pretrain``)."""
    if ABLATION in stages:
        raise ValueError(
            f"spectrafm.stages.{ABLATION}: that name is the workflow's own (finetune_fe started from pretrain); rename the stage"
        )
    plan = dict(stages)
    if "pretrain" in stages and "finetune_fe" in stages:
        plan[ABLATION] = {**stages["finetune_fe"], "init": "pretrain"}
    return plan
