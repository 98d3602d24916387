"""Rule seeds: each seed's claims table -> results/eval/seeds.csv (values per seed, mean, spread)."""

from pathlib import Path

from pipeline.evaluate.variants import write_seeds
from pipeline.workflow.tracking import rule_run

sm = snakemake  # noqa: F821
with rule_run(sm) as run:
    log = run.log
    paths = {sm.params.seeds[Path(p).parent.name]: p for p in sm.input.claims}
    table = write_seeds(paths, sm.output[0])
    for r in table.itertuples():
        log.info("%s: mean %.4g, seed std %.3g, reproduced in %d of %d seeds", r.claim, r.mean, r.seed_std, r.n_reproduced, r.n_seeds)
