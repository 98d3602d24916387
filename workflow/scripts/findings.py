"""Rule findings: the default sky's claims, the seeds' and the confirmation sky's -> results/eval/findings.csv and its forest plot."""

from pipeline.evaluate.figures.claims import draw_forest
from pipeline.evaluate.findings import tally, write_findings
from pipeline.workflow.tracking import rule_run

sm = snakemake  # noqa: F821
with rule_run(sm) as run:
    table = write_findings(sm.input.claims, sm.input.seeds, sm.input.confirm, sm.output.table)
    draw_forest(table, sm.output.figure, dpi=sm.params.dpi)
    for r in table.itertuples():
        run.log.info(
            "%s: default %s, seeds %s, confirmation sky %s -> %s", r.claim, r.default_verdict, r.seeds_verdict, r.confirm_verdict, r.verdict
        )
    run.log.info("%s", tally(table))
