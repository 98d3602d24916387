# The rules' input functions (wildcards -> files) and the names the rule files read, bound to one
# Plan of this run (src/pipeline/workflow/plan.py: what the configuration plans, tested apart).
import os
from pathlib import Path

import yaml

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger

from pipeline.workflow.codedeps import code_of as package_code_of
from pipeline.evaluate.figures import FIGURES as FIGURE_FUNCTIONS, SUMMARY_FIGURES
from pipeline.evaluate.findings import CONFIRM_FOLDER
from pipeline.evaluate.registry import MODEL_TASKS, TASKS
from pipeline.evaluate.settings import check as check_evaluate_settings
from pipeline.evaluate.settings import figure_dpi
from pipeline.evaluate.variants import SCALING_TASKS
from pipeline.spectrafm.plan import ABLATION
from pipeline.workflow.plan import VARIANT_PREFIX, Plan, fcnn_stage


def code_of(script):
    """The package's source files that workflow/scripts/<script>.py runs: the closure of its imports
    (pipeline.workflow.codedeps). Listed as inputs, so that an edit anywhere in the code a step runs reruns
    that step, and an edit elsewhere does not."""
    here = Path(workflow.basedir)  # the checkout, named relative to the working folder (the same names from any folder)
    files = package_code_of(str(here / "workflow/scripts" / f"{script}.py"), str(here / "src"))
    return [os.path.relpath(f) for f in files]


def raw_input(key, mock_default):
    """A raw input file from config['inputs'], or the mock sky's file when it is left empty."""
    value = config["inputs"][key]
    if value:
        return value
    if not MOCK:
        raise ValueError(f"config: inputs.{key} must point at your file when mock is false")
    return mock_default


def mock_only(*paths):
    return list(paths) if MOCK else []


# The plan of this run: branches, models, variants, SpectraFM's stages, experts (pipeline.workflow.plan)
PLAN = Plan(config, RESULTS, MOCK)
SKY_CORE, upstream = PLAN.sky_core, PLAN.upstream
SPECTRAFM, SPECTRAFM_CFG, SPECTRAFM_STAGES = PLAN.spectrafm, PLAN.spectrafm_cfg, PLAN.spectrafm_stages
MASS_AGE, MASS_AGE_MODEL, BASE_MODEL = PLAN.mass_age, PLAN.mass_age_model, PLAN.base_model
IMPORT_FROM, TRAINED_MODEL_NAMES = PLAN.import_from, PLAN.trained_model_names
SEED_VARIANTS, SCALING_VARIANTS, EXPERIMENT_VARIANTS = PLAN.seed_variants, PLAN.scaling_variants, PLAN.experiment_variants
VARIANTS, CLAIMS_TASKS = PLAN.variants, PLAN.claims_tasks
SPECTRAFM_SEEDED, SPECTRAFM_EXPERIMENTS, SPECTRAFM_VARIANTS = PLAN.spectrafm_seeded, PLAN.spectrafm_experiments, PLAN.spectrafm_variants
EXPERTS = PLAN.experts
# The order two cores take the long chains in (a rule's priority: the higher runs first when both
# are ready): the base model's (catalog, tokens, train, the mass/age model), on which every
# evaluation waits; then SpectraFM's stages, one after another; the XGBoost experts, the
# evaluations and the figures fill the cores around and after them.
PRIORITY = {"model_chain": 50, "spectrafm_chain": 40}
SPECTRAFM_MODELS = ["pretrain", "finetune_real", "finetune_fe", ABLATION, "fcnn"]  # what evaluate_spectrafm compares
is_mass_age, published_model_files, train_settings = PLAN.is_mass_age, PLAN.published_model_files, PLAN.train_settings
token_store, init_model, spectrafm_dir, spectrafm_settings = PLAN.token_store, PLAN.init_model, PLAN.spectrafm_dir, PLAN.spectrafm_settings
variant_tasks, variant_metrics, variant_claims, variant_model_dir = (
    PLAN.variant_tasks,
    PLAN.variant_metrics,
    PLAN.variant_claims,
    PLAN.variant_model_dir,
)


def spectrafm_init(w):
    """The model a SpectraFM stage starts from (its `init`), the variant's own for a variant."""
    return PLAN.spectrafm_init(w.stage, w.get("variant"))


def spectrafm_stage(w):
    """The settings of stage ``w.stage`` of a SpectraFM run (the default run's, or a variant's)."""
    return PLAN.spectrafm_stage(w.stage, w.get("variant"))


def confirm_claims(w):
    """The confirmation sky's claims.csv (configs/confirm.yaml runs the default chain into <results>/confirm)."""
    path = Path(RESULTS) / CONFIRM_FOLDER / "eval/claims.csv"
    if not path.is_file():
        raise WorkflowError(
            f"{path}: the confirmation sky has not been run; `make findings` runs it "
            "(or: snakemake --cores all --configfile configs/confirm.yaml, then this target again)"
        )
    return str(path)


# Stage 8 (apply): the model's answers for every XP source, one predict_catalog job per partition of
# the input (the archive's bulk files, named by HEALPix range): on the mock, sky.xp_all's files; on
# real data, the folders inputs.xp_all_gaia_source and inputs.xp_all_xp_continuous.
def _xp_all_files():
    """{range: {xp_continuous: file, gaia_source: [files of overlapping ranges]}}, or {} when off."""
    from pipeline.gaia.bulk import paired_partitions

    inputs = config["inputs"]
    if not config["catalog_all"]["enabled"]:
        return {}
    if MOCK and not inputs["xp_all_xp_continuous"]:
        from pipeline.sky.xp_all import file_names, partition_names

        xp_all = config["sky"]["xp_all"]
        names = partition_names(int(xp_all["partitions"])) if xp_all["enabled"] else []
        files = {n: file_names(n, xp_all["format"]) for n in names}
        return {
            n: {"xp_continuous": f"{SKY}/xp_all/{f['xp_continuous']}", "gaia_source": [f"{SKY}/xp_all/{f['gaia_source']}"]}
            for n, f in files.items()
        }
    if not inputs["xp_all_xp_continuous"]:
        return {}
    if not inputs["xp_all_gaia_source"]:
        raise ValueError("config: inputs.xp_all_gaia_source must name the folder of GaiaSource files beside inputs.xp_all_xp_continuous")
    try:
        return paired_partitions(inputs["xp_all_xp_continuous"], inputs["xp_all_gaia_source"])
    except FileNotFoundError as exc:
        raise ValueError(f"config: inputs.xp_all_xp_continuous / xp_all_gaia_source: {exc}") from None


XP_ALL_FILES = _xp_all_files()
CATALOG_ALL = bool(XP_ALL_FILES)
# the all-sky catalogue is judged against the truth only where the mock made its sources
CATALOG_ALL_TRUTH = CATALOG_ALL and MOCK and not config["inputs"]["xp_all_xp_continuous"]


# Stage 6: the evaluation tasks (src/pipeline/evaluate/registry.py) and their figures (named where
# they are drawn, evaluate/figures/; captions in workflow/report/figures.yaml).
FIGURES = {task: list(figures) for task, figures in FIGURE_FUNCTIONS.items()}
CAPTIONS = yaml.safe_load(open(workflow.source_path("../report/figures.yaml")))  # task -> figure -> caption
EVAL_TASKS = PLAN.eval_tasks(CATALOG_ALL_TRUTH)
check_evaluate_settings(config["evaluate"])  # a wrong key fails here, naming evaluate.<task>.<key>
for _line in PLAN.branches_off(CATALOG_ALL, CATALOG_ALL_TRUTH):
    logger.info(f"not run: {_line}")


def task_model(w):
    if w.task == "search":  # the fine-tuned encoders (workflow/rules/search.smk)
        return f"{RESULTS}/search/search.pt"
    return f"{RESULTS}/models/{MASS_AGE_MODEL if w.task == 'mass_age' else BASE_MODEL}/model.pt"


def task_store(w):
    return token_store(MASS_AGE_MODEL if w.task == "mass_age" else BASE_MODEL)


def task_catalog(w):
    return f"{RESULTS}/mass_age/catalog.parquet" if w.task == "mass_age" else f"{RESULTS}/catalog/catalog.parquet"


def task_experts(w):
    folder = "mass_age/baselines" if w.task == "mass_age" else "baselines"
    return [f"{RESULTS}/{folder}/{e}/metrics.json" for e in TASKS[w.task].experts]


def evaluate_settings(wildcards):
    """The config slice a task depends on: shared settings plus its own block."""
    return PLAN.evaluate_settings(wildcards.task, FIGURES)


def figure_outputs():
    return [f"{RESULTS}/eval/{t}/{f}.png" for t in EVAL_TASKS for f in FIGURES[t]]


def catalog_all_outputs():
    """The summary and its figures (the evaluation against the truth is evaluate.tasks' catalog_all)."""
    return [f"{RESULTS}/catalog_all/summary.json", *(f"{RESULTS}/catalog_all/{f}.png" for f in SUMMARY_FIGURES)]
