"""Rule catalog_validation: the catalog against the mock sky's truth."""

import pandas as pd

from pipeline.catalog.validate import TRUTH_COLUMNS, validate_catalog
from pipeline.io.atomic import write_json
from pipeline.settings import keywords
from pipeline.workflow.tracking import rule_run

sm = snakemake  # noqa: F821
with rule_run(sm) as run:
    log = run.log
    report = validate_catalog(
        pd.read_parquet(sm.input.catalog),
        pd.read_parquet(sm.input.truth, columns=list(TRUTH_COLUMNS)),
        **keywords(validate_catalog, sm.params.validation, "validation"),
    )
    write_json(report, sm.output[0])
    zp = report["parallax_zero_point"]
    log.info(
        "zero point: median(corrected - true) = %.2f uas (uncorrected %.2f) over %d stars: %s",
        zp["median_corrected_minus_true_uas"],
        zp["median_uncorrected_minus_true_uas"],
        zp["n_stars"],
        "ok" if zp["pass"] else "FAILS BAR",
    )
    log.info("logebv: robust scatter against truth %.4f", report["logebv"]["robust_scatter_vs_true"])
