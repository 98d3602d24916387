# Shared helpers for the workflow files.
import os
import re
import sys
from pathlib import Path

import yaml

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger

from pipeline.workflow.codedeps import code_of as package_code_of
from pipeline.evaluate.figures import FIGURES as FIGURE_FUNCTIONS, SUMMARY_FIGURES
from pipeline.evaluate.findings import CONFIRM_FOLDER
from pipeline.baselines.xgb import expert_plan
from pipeline.evaluate.registry import MODEL_TASKS, TASKS
from pipeline.evaluate.settings import check as check_evaluate_settings
from pipeline.evaluate.settings import figure_dpi
from pipeline.evaluate.variants import (
    BASE_MODEL_TASKS,
    SCALING_TASKS,
    experiment_variants,
    is_base,
    scaling_variants,
    seed_variants,
    spectrafm_experiments,
    spectrafm_seeded,
    trains_its_own,
)
from pipeline.spectrafm.plan import ABLATION, stage_plan


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


# What the tabular chain depends on: the SpectraFM settings (its spectra, its real files) are left
# out, so that switching SpectraFM on or retuning it reruns neither the sky nor the tokens.
SKY_CORE = {k: v for k, v in config["sky"].items() if k not in ("apogee_spectra", "xp_all")}


def upstream(*keys):
    """The config blocks a stage's outputs depend on (params: a change reruns the stage)."""
    blocks = {"sky": SKY_CORE, "inputs": {k: v for k, v in config["inputs"].items() if k != "aspcapstar"}}
    return {k: blocks.get(k, config.get(k)) for k in keys}


# SpectraFM (Koblischke & Bovy 2024): on the mock when sky.apogee_spectra.enabled, on real data
# when inputs.aspcapstar names a folder of aspcapStar files.
SPECTRAFM = bool(config["sky"]["apogee_spectra"]["enabled"]) if MOCK else bool(config["inputs"]["aspcapstar"])
SPECTRAFM_CFG = config["spectrafm"]
SPECTRAFM_STAGES = stage_plan(SPECTRAFM_CFG["stages"])  # the configured stages and the paper's ablation (spectrafm/plan.py)


def spectrafm_init(w):
    """The stage a SpectraFM stage starts from (its `init`), or nothing for the pre-training; a seed
    variant's stage starts from the variant's own."""
    init = SPECTRAFM_STAGES[w.stage].get("init")
    return [f"{spectrafm_dir(w.get('variant'), init)}/{init}/model.pt"] if init else []


# The second model: mass and age tokens of evolved stars (Zhang et al. 2026), its own catalogue
# join and token store under results/mass_age/, trained from the base model's weights.
MASS_AGE = bool(config["mass_age"]["enabled"])
BASE_MODEL = config["train"]["name"]
# the models that are trained: every name, or all but the base model when it is imported
IMPORT_FROM = config["train"].get("import_from") or ""
TRAINED_MODEL_NAMES = f"(?!{re.escape(BASE_MODEL)}$)[^/]+" if IMPORT_FROM else "[^/]+"


def published_model_files():
    """The files of train.import_from, a model folder in Leung & Bovy's format."""
    return [str(Path(IMPORT_FROM) / name) for name in ("config.json", "weights.pt")]


MASS_AGE_MODEL = config["mass_age"]["train"]["name"]


def is_mass_age(name):
    return MASS_AGE and name == MASS_AGE_MODEL


# The claims' targets (workflow/rules/claims.smk): variants of the base model, each a name and the
# overrides of its train block, trained as results/models/claims-<variant>/ (or the base model itself
# when the overrides change nothing).
CLAIMS_CFG = config.get("claims") or {}
SEED_VARIANTS = seed_variants(CLAIMS_CFG.get("seeds") or [])
SCALING_VARIANTS = scaling_variants(CLAIMS_CFG["scaling"]) if CLAIMS_CFG.get("scaling") else {}
EXPERIMENT_VARIANTS = experiment_variants(CLAIMS_CFG.get("experiments") or {})
VARIANTS = {**SEED_VARIANTS, **SCALING_VARIANTS, **EXPERIMENT_VARIANTS}
CLAIMS_TASKS = list(CLAIMS_CFG.get("tasks") or BASE_MODEL_TASKS)
VARIANT_PREFIX = "claims-"
# a seed variant retrains SpectraFM's stages and FCNN with its seed too (results/claims/<variant>/spectrafm/),
# but for the seed the default run's SpectraFM already has (then it is that one)
SPECTRAFM_SEEDED = {v: spectrafm_seeded(SPECTRAFM_CFG, o["seed"]) for v, o in SEED_VARIANTS.items()} if SPECTRAFM else {}
# an experiment with a spectrafm part (claims.experiments.<name>.spectrafm: overrides of every stage) retrains
# the stages it changes; SpectraFM's claims are then judged on it, the base model's tasks are not rerun
SPECTRAFM_EXPERIMENTS = spectrafm_experiments(CLAIMS_CFG.get("experiments") or {}, SPECTRAFM_CFG) if SPECTRAFM else {}
SPECTRAFM_SEEDED.update(SPECTRAFM_EXPERIMENTS)
SPECTRAFM_VARIANTS = [v for v, settings in SPECTRAFM_SEEDED.items() if settings]


def confirm_claims(w):
    """The confirmation sky's claims.csv (configs/confirm.yaml runs the default chain into <results>/confirm)."""
    path = Path(RESULTS) / CONFIRM_FOLDER / "eval/claims.csv"
    if not path.is_file():
        raise WorkflowError(
            f"{path}: the confirmation sky has not been run; `make findings` runs it "
            "(or: snakemake --cores all --configfile configs/confirm.yaml, then this target again)"
        )
    return str(path)


def spectrafm_dir(variant=None, stage=None):
    """The folder of a SpectraFM run's stage: a variant's own when the variant changes that stage (or
    one it starts from), else the default run's."""
    if variant not in SPECTRAFM_VARIANTS:
        return f"{RESULTS}/spectrafm"
    settings = spectrafm_settings(variant)
    if stage == "fcnn":
        own = fcnn_stage(settings) != fcnn_stage(SPECTRAFM_CFG)
    else:
        own = stage is None or trains_its_own(stage_plan(settings["stages"]), SPECTRAFM_STAGES, stage)
    return f"{RESULTS}/claims/{variant}/spectrafm" if own else f"{RESULTS}/spectrafm"


SPECTRAFM_MODELS = ["pretrain", "finetune_real", "finetune_fe", ABLATION, "fcnn"]  # what evaluate_spectrafm compares


def fcnn_stage(settings):
    """The FCNN's training settings: finetune_fe's stars and window, with the fcnn block's schedule."""
    own = {k: v for k, v in settings["fcnn"].items() if k not in ("hidden", "dropout")}
    return {**settings["stages"]["finetune_fe"], **own}


def spectrafm_settings(variant=None):
    """The spectrafm block's stages and fcnn settings of a SpectraFM run (a seed variant's: its seed)."""
    return SPECTRAFM_SEEDED[variant] if variant in SPECTRAFM_VARIANTS else SPECTRAFM_CFG


def spectrafm_stage(w):
    """The settings of stage ``w.stage`` of a SpectraFM run (the default run's, or a seed variant's
    with its seed), the paper's ablation among them (spectrafm/plan.py)."""
    return stage_plan(spectrafm_settings(w.get("variant"))["stages"])[w.stage]


def variant_tasks(variant):
    """The tasks a variant is evaluated on: a scaling point on those its figure draws, the others on
    claims.tasks, and a seed variant on SpectraFM's too when that branch is on."""
    if variant in SCALING_VARIANTS:
        return [t for t in CLAIMS_TASKS if t in SCALING_TASKS]
    if variant in SPECTRAFM_EXPERIMENTS and not VARIANTS[variant]:
        return ["spectrafm"]  # a SpectraFM-only experiment: the base model is the default's
    return CLAIMS_TASKS + (["spectrafm"] if variant in SPECTRAFM_SEEDED else [])


def variant_metrics(variant):
    """The metrics.json of each task of a variant: its own evaluation, and SpectraFM's of the run it
    shares (the default run's when the variant's seed is the default run's)."""
    out = []
    for t in variant_tasks(variant):
        if t == "spectrafm" and variant not in SPECTRAFM_VARIANTS:
            out.append(f"{RESULTS}/eval/spectrafm/metrics.json")
        else:
            out.append(f"{RESULTS}/claims/{variant}/eval/{t}/metrics.json")
    return out


def variant_claims(variants):
    """Each variant's claims table, and the base model's (results/claims/<variant>/claims.csv)."""
    return [f"{RESULTS}/claims/{v}/claims.csv" for v in variants]


def variant_model_dir(variant):
    if is_base(config["train"], VARIANTS[variant]):
        return f"{RESULTS}/models/{BASE_MODEL}"
    return f"{RESULTS}/models/{VARIANT_PREFIX}{variant}"


def train_settings(name):
    """The train block of a model: the base settings, overridden by mass_age.train for the mass/age
    model, and by a variant's overrides for claims-<variant>."""
    if is_mass_age(name):
        return {**config["train"], **config["mass_age"]["train"]}
    if name.startswith(VARIANT_PREFIX) and name[len(VARIANT_PREFIX) :] in VARIANTS:
        return {**config["train"], **VARIANTS[name[len(VARIANT_PREFIX) :]], "name": name}
    return config["train"]


def token_store(name):
    return f"{RESULTS}/mass_age/tokens.zarr" if is_mass_age(name) else f"{RESULTS}/tokens/stars.zarr"


def init_model(name):
    """The weights a model starts from: the base model's for the mass/age model (mass_age.train.init_from_base)."""
    if is_mass_age(name) and train_settings(name)["init_from_base"]:
        return [f"{RESULTS}/models/{BASE_MODEL}/model.pt"]
    return []


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
EVAL_TASKS = [
    t
    for t in config["evaluate"]["tasks"]
    if t in TASKS and (MASS_AGE or t != "mass_age") and (SPECTRAFM or t != "spectrafm") and (CATALOG_ALL_TRUTH or t != "catalog_all")
]
check_evaluate_settings(config["evaluate"])  # a wrong key fails here, naming evaluate.<task>.<key>


def branches_off():
    """One line per branch this configuration leaves out, and why (said at the start of every run)."""
    inputs = config["inputs"]
    off = []
    if not SPECTRAFM:
        off.append("SpectraFM: " + ("sky.apogee_spectra.enabled is false" if MOCK else "inputs.aspcapstar is empty"))
    if not MASS_AGE:
        off.append("mass/age model (Zhang et al.): mass_age.enabled is false")
    if not CATALOG_ALL:
        why = (
            "catalog_all.enabled is false"
            if not config["catalog_all"]["enabled"]
            else ("sky.xp_all.enabled is false" if MOCK and not inputs["xp_all_xp_continuous"] else "inputs.xp_all_xp_continuous is empty")
        )
        off.append(f"catalogue of every XP source (catalog_all): {why}")
    elif not CATALOG_ALL_TRUTH:
        off.append("catalog_all's evaluation against the truth: only on the mock's own XP sources")
    return off


for _line in branches_off():
    logger.info(f"not run: {_line}")


def task_model(w):
    if w.task == "search":  # the fine-tuned encoders (workflow/rules/search.smk)
        return f"{RESULTS}/search/search.pt"
    return f"{RESULTS}/models/{MASS_AGE_MODEL if w.task == 'mass_age' else BASE_MODEL}/model.pt"


def task_store(w):
    return token_store(MASS_AGE_MODEL if w.task == "mass_age" else BASE_MODEL)


def task_catalog(w):
    return f"{RESULTS}/mass_age/catalog.parquet" if w.task == "mass_age" else f"{RESULTS}/catalog/catalog.parquet"


# the XGBoost experts: input set -> (targets, settings), baselines.experts' entries with their own settings
EXPERTS = expert_plan(config["baselines"]["experts"], config["baselines"]["xgboost"])


def task_experts(w):
    folder = "mass_age/baselines" if w.task == "mass_age" else "baselines"
    return [f"{RESULTS}/{folder}/{e}/metrics.json" for e in TASKS[w.task].experts]


def evaluate_settings(wildcards):
    """The config slice a task depends on: shared settings plus its own block."""
    e = config["evaluate"]
    shared = {k: v for k, v in e.items() if k not in FIGURES and k != "tasks"}
    if wildcards.task == "search":  # how the search is scored lives in the search block
        return {**shared, "search": {k: v for k, v in config["search"].items() if k in ("top_n", "queries")}}
    return {**shared, wildcards.task: e.get(wildcards.task, {})}


def figure_outputs():
    return [f"{RESULTS}/eval/{t}/{f}.png" for t in EVAL_TASKS for f in FIGURES[t]]


# Provenance in MLflow (src/pipeline/workflow/tracking.py): the parent run of this invocation.
def mlflow_tracking_uri():
    from pipeline.workflow.tracking import tracking_uri

    return tracking_uri(config)


def take_results_lock():
    """One results folder, one run (pipeline.workflow.results_lock): refused, naming the holder, while another
    invocation, from whatever working folder, writes paths.results."""
    from pipeline.workflow.results_lock import ResultsLocked, acquire

    try:
        acquire(RESULTS, os.getcwd(), log=logger.warning)
    except ResultsLocked as exc:
        raise WorkflowError(f"error: {exc}") from None


def give_back_results_lock():
    from pipeline.workflow.results_lock import release

    release(RESULTS)


if "--unlock" in sys.argv:  # snakemake --unlock clears the results folder's lock beside the working folder's
    from pipeline.workflow.results_lock import clear

    clear(RESULTS, log=logger.info)


def start_tracking():
    from pipeline.workflow.jobs import start_workflow_run

    targets = getattr(getattr(workflow, "dag", None), "targetfiles", None) or ()
    start_workflow_run(config, targets=sorted(map(str, targets)), repo=workflow.basedir)


def end_tracking(status):
    from pipeline.workflow.jobs import end_workflow_run

    end_workflow_run(config, status)


def catalog_all_outputs():
    """The summary and its figures (the evaluation against the truth is evaluate.tasks' catalog_all)."""
    return [f"{RESULTS}/catalog_all/summary.json", *(f"{RESULTS}/catalog_all/{f}.png" for f in SUMMARY_FIGURES)]
