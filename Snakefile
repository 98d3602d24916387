# Reference pipeline for a foundation model of stars (Leung & Bovy 2024).
# `snakemake --cores all` runs the default target on the mock sky; see README.md.
import os

from snakemake.utils import min_version

from pipeline.configuration import with_library_defaults
from pipeline.workflow.guards import check_inputs_read_only, check_schema, coerce_command_line_values, refuse_renamed_keys

min_version("9.0")


# The workflow's own files (its defaults, schema, rules, scripts, report) resolve from this folder;
# the user's (inputs, paths.results, paths.mock_sky, --configfile) from the working folder, so
# `snakemake -s <checkout>/Snakefile -d <folder>` runs it anywhere.
configfile: os.path.join(workflow.basedir, "config.yaml")


# --config mlflow='{enabled: false}' arrives as strings ("false"): read its leaves as YAML first.
coerce_command_line_values(config, workflow.config_settings.config)
refuse_renamed_keys(config)
# Validated once (a message naming the key), then completed with the library's defaults (the settings
# dataclasses, their one home): config.yaml holds only what differs from them.
check_schema(config, os.path.join(workflow.basedir, "workflow/schemas/config.schema.yaml"))
with_library_defaults(config)
if config["mock"]:  # the mock sky's blocks from the sky's own dataclasses (real-data runs never import it)
    from pipeline.sky.defaults import with_sky_defaults

    with_sky_defaults(config)


report: "workflow/report/workflow.rst"


# The mock sky writes its survey files into their own folder (paths.mock_sky), and only with
# mock: true; with mock: false no rule writes anywhere near the user's inputs (checked below).
SKY = config["paths"]["mock_sky"]
RESULTS = config["paths"]["results"]
MOCK = config["mock"]


include: "workflow/rules/common.smk"
include: "workflow/rules/lifecycle.smk"


# Provenance: every job logs an MLflow run (src/pipeline/workflow/tracking.py) into the store named by
# MLFLOW_TRACKING_URI, which defaults to SQLite in the results folder; envvars passes it on to
# cluster jobs. One parent run per invocation groups the jobs' runs.
os.environ.setdefault("MLFLOW_TRACKING_URI", mlflow_tracking_uri())


envvars:
    "MLFLOW_TRACKING_URI",


# One results folder, one run: the lock in paths.results is taken before the first job (dry runs
# take none) and given back at the end, whatever the end.
onstart:
    take_results_lock()
    start_tracking()


onsuccess:
    try:
        end_tracking("FINISHED")
    finally:
        give_back_results_lock()


onerror:
    try:
        end_tracking("FAILED")
    finally:
        give_back_results_lock()


ALLSTAR = raw_input("allstar", f"{SKY}/allStar.fits")
GAIA_SOURCE = raw_input("gaia_source", f"{SKY}/gaia_source.parquet")
XP_CONTINUOUS = raw_input("xp_continuous", f"{SKY}/xp_continuous")
DUST_DIR = raw_input("dust_dir", f"{SKY}/dust")


if MOCK:

    include: "workflow/rules/sky.smk"


include: "workflow/rules/catalog.smk"
include: "workflow/rules/tokens.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/baselines.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/search.smk"
include: "workflow/rules/claims.smk"


if MASS_AGE:

    include: "workflow/rules/mass_age.smk"


if SPECTRAFM:

    include: "workflow/rules/spectrafm.smk"


if CATALOG_ALL:

    include: "workflow/rules/apply.smk"


rule all:
    default_target: True
    input:
        f"{RESULTS}/tokens/stars.zarr",
        f"{RESULTS}/catalog/counts.json",
        f"{RESULTS}/models/{config['train']['name']}/heldout.json",
        expand(f"{RESULTS}/baselines/{{expert}}/metrics.json", expert=config["baselines"]["experts"]),
        figure_outputs(),
        f"{RESULTS}/eval/summary.csv",
        f"{RESULTS}/eval/claims.png",
        [f"{RESULTS}/mass_age/counts.json"] if MASS_AGE else [],
        catalog_all_outputs() if CATALOG_ALL else [],
        mock_only(
            f"{RESULTS}/sky/realism.json",
            f"{RESULTS}/sky/difficulty.json",
            f"{RESULTS}/catalog/validation.json",
        ),


# The user's files are read-only to the workflow: no rule may write into a folder that holds
# them, and with mock: false each must exist (a missing input is an error, never made up).
check_inputs_read_only(config, workflow.rules)
