# Shared helpers for the workflow files.
from pathlib import Path

import yaml


def library(*modules):
    """Source files of src/pipeline sub-packages or modules. Listed as inputs, so that changing
    the code a step runs reruns that step."""
    files = []
    for m in modules:
        p = Path("src/pipeline") / m
        files += sorted(str(f) for f in p.rglob("*.py")) if p.is_dir() else [str(p.with_suffix(".py"))]
    return files


def raw_input(key, mock_default):
    """A raw input file from config['inputs'], or the mock sky's file when it is left empty."""
    value = (config.get("inputs") or {}).get(key) or ""
    if value:
        return value
    if not MOCK:
        raise ValueError(f"config: inputs.{key} must point at your file when mock is false")
    return mock_default


def mock_only(*paths):
    return list(paths) if MOCK else []


# Stage 6: the evaluation tasks and their figures (captions in workflow/report/figures.yaml).
FIGURES = yaml.safe_load(open(workflow.source_path("../report/figures.yaml")))
EVAL_TASKS = [t for t in config["evaluate"]["tasks"] if t in FIGURES]
# the XGBoost experts each task compares with (src/pipeline/evaluate/tasks.py:EXPERTS)
TASK_EXPERTS = {"spectra_to_parameters": ["xp30_colours"], "rp0_experts": ["params", "params_2mass", "params_2mass_bprp"]}


def evaluate_settings(wildcards):
    """The config slice a task depends on: shared settings plus its own block."""
    e = config["evaluate"]
    shared = {k: v for k, v in e.items() if k not in FIGURES and k != "tasks"}
    return {**shared, wildcards.task: e.get(wildcards.task, {})}


def figure_outputs():
    return [f"{RESULTS}/eval/{t}/{f}.png" for t in EVAL_TASKS for f in FIGURES[t]]


# Provenance in MLflow (src/pipeline/tracking.py): the parent run of this invocation.
def mlflow_tracking_uri():
    from pipeline.tracking import tracking_uri

    return tracking_uri(config)


def start_tracking():
    from pipeline.tracking import start_workflow_run

    targets = getattr(getattr(workflow, "dag", None), "targetfiles", None) or ()
    start_workflow_run(config, targets=sorted(map(str, targets)), repo=workflow.basedir)


def end_tracking(status):
    from pipeline.tracking import end_workflow_run

    end_workflow_run(config, status)
