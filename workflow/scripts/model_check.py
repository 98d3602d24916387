"""Rule model_check: the trained model on validation stars (parameters from XP and colours)."""

from pathlib import Path

from pipeline.io.atomic import write_json
from pipeline.model.check import heldout_check
from pipeline.workflow.tracking import rule_run

sm = snakemake  # noqa: F821
with rule_run(sm) as run:
    log = run.log
    truth = sm.input.truth[0] if sm.input.truth else None
    report = heldout_check(Path(sm.input.model).parent, sm.input.tokens, sm.input.catalog, truth)
    write_json(report, sm.output[0])
    for t, row in report["targets"].items():
        log.info(
            "%-5s scatter vs labels %.4g, vs truth %s, z robust std %.2f",
            t,
            row["robust_scatter_vs_labels"],
            f"{row.get('robust_scatter_vs_truth', float('nan')):.4g}",
            row["z_robust_std"],
        )
