# The run's life, apart from its rules: the results folder's lock (one results folder, one run) and the
# MLflow runs of the invocation (src/pipeline/workflow/: results_lock.py, tracking.py, jobs.py), called
# by the Snakefile's onstart / onsuccess / onerror; `snakemake --unlock` clears the results lock too.
import os
import sys

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger


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
