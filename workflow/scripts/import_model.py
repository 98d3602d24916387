"""Rule import_model: a model folder in Leung & Bovy's published format -> results/models/<name>/."""

from pathlib import Path

from pipeline.model.lb23 import import_lb23
from pipeline.model.mlflow_model import log_pyfunc
from pipeline.workflow.tracking import rule_run

sm = snakemake  # noqa: F821
with rule_run(sm) as run:
    out = Path(sm.output.model).parent
    meta = import_lb23(sm.params.source, out)
    run.log.info("imported %s: %d parameters, %d tokens", sm.params.source, meta["n_parameters"], len(meta["vocabulary"]))
    run.log_params(
        {
            "imported_from": meta["imported_from"]["path"],
            "weights_sha256": meta["imported_from"]["weights_sha256"],
            **{f"model.{k}": v for k, v in meta["model"].items()},
        }
    )
    run.log_model(out, log_pyfunc)
