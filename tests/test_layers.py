"""The package's layers and the rerun decisions derived from them (pipeline.workflow.codedeps): the mock sky is
imported by nobody but itself and the evaluation's truth module, and every rule lists as inputs the
code its script reaches, so an edit reruns exactly the steps that run the edited code."""

import re
import textwrap
from pathlib import Path

import pytest
import yaml

from conftest import REPO, run_snakemake
from pipeline.workflow.codedeps import _imported_modules, code_of

SRC = REPO / "src"
# rules whose scripts run on real data; none may reach the mock sky's code
REAL_DATA_SCRIPTS = (
    "catalog",
    "tokens",
    "train",
    "import_model",
    "model_check",
    "baselines",
    "search_train",
    "apogee_spectra",
    "spectrafm_train",
    "mass_age_catalog",
)


def _write(root: Path, files: dict):
    for name, text in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))


def test_code_of_follows_relative_lazy_and_package_imports(tmp_path):
    _write(
        tmp_path / "src/pipeline",
        {
            "__init__.py": "",
            "a.py": "from .b import x\n\ndef later():\n    from .c.d import y\n",
            "b.py": "x = 1\n",
            "c/__init__.py": "",
            "c/d.py": "from .. import e\ny = 2\n",
            "e.py": "import numpy\n",
            "unused.py": "from . import a\n",
        },
    )
    (tmp_path / "script.py").write_text("import os\nfrom pipeline.a import later\n")
    got = {Path(f).relative_to(tmp_path / "src/pipeline").as_posix() for f in code_of(tmp_path / "script.py", tmp_path / "src")}
    assert got == {"__init__.py", "a.py", "b.py", "c/__init__.py", "c/d.py", "e.py"}


def _modules():
    for f in sorted((SRC / "pipeline").rglob("*.py")):
        yield f.relative_to(SRC / "pipeline").as_posix(), f


def test_only_the_sky_and_the_truth_module_import_the_mock_sky():
    allowed = lambda rel: rel.startswith("sky/") or rel == "evaluate/truth.py"  # noqa: E731
    offenders = {
        rel: sorted(m for m in _imported_modules(SRC, f) if m.startswith("pipeline.sky")) for rel, f in _modules() if not allowed(rel)
    }
    assert not {k: v for k, v in offenders.items() if v}


def test_the_science_never_imports_the_workflow_plumbing():
    """pipeline.workflow (MLflow, the Snakefile's guards, logs, the results lock) serves the workflow;
    a science module reaches only codedeps, for the hash of the code a model was trained with."""
    offenders = {
        rel: sorted(
            m for m in _imported_modules(SRC, f) if m.startswith("pipeline.workflow") and not m.startswith("pipeline.workflow.codedeps")
        )
        for rel, f in _modules()
        if not rel.startswith("workflow/") and rel not in ("__main__.py", "configuration.py")
    }
    assert not {k: v for k, v in offenders.items() if v}


# the floors that produce data and models: none reads the evaluation (which judges them), so the
# import graph has no arrow back up (the model card gets its findings passed in; named tables live in io/)
BELOW_EVALUATION = ("gaia/", "io/", "catalog/", "tokens/", "model/", "baselines/", "spectrafm/", "vac/", "search/", "apply/", "engine.py")


def test_no_arrow_back_up_to_the_evaluation():
    offenders = {
        rel: sorted(m for m in _imported_modules(SRC, f) if m.startswith("pipeline.evaluate"))
        for rel, f in _modules()
        if rel.startswith(BELOW_EVALUATION)
    }
    assert not {k: v for k, v in offenders.items() if v}


def test_rules_on_real_data_never_run_the_mock_sky():
    for script in REAL_DATA_SCRIPTS:
        files = code_of(REPO / f"workflow/scripts/{script}.py", SRC)
        assert files and not [f for f in files if "/sky/" in f], script
    assert any("/sky/sed.py" in f for f in code_of(REPO / "workflow/scripts/evaluate.py", SRC))  # its truth module


def _rule_inputs(args) -> dict[str, set[str]]:
    """rule -> the union of its jobs' input files, from a dry run's DAG."""
    proc = run_snakemake(*args, "--dry-run")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out, rule = {}, None
    for line in (proc.stdout + proc.stderr).splitlines():
        m = re.match(r"(?:local)?rule (\w+):", line)
        if m:
            rule = m.group(1)
        elif rule and line.strip().startswith("input:"):
            out.setdefault(rule, set()).update(s.strip() for s in line.split(":", 1)[1].split(","))
    return out


def _code(inputs):
    return {f for f in inputs if f.startswith("src/pipeline/")}


@pytest.mark.parametrize("mock", [True, False], ids=["mock", "real-format files"])
def test_each_rule_lists_the_code_its_script_runs(small_sky, tmp_path, mock):
    sky, _ = small_sky
    cfg = {"paths": {"mock_sky": str(tmp_path / "mock"), "results": str(tmp_path / "results")}}
    if not mock:
        cfg |= {
            "mock": False,
            "inputs": {
                "allstar": str(sky / "allStar.fits"),
                "gaia_source": str(sky / "gaia_source.parquet"),
                "xp_continuous": str(sky / "xp_continuous"),
                "dust_dir": str(sky / "dust"),
                "distmass": str(sky / "distmass.fits"),
            },
        }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    inputs = _rule_inputs(("--cores", "1", "--configfile", "configs/tiny.yaml", str(tmp_path / "c.yaml")))
    scripts = {
        "evaluate": "evaluate",
        "figure": "figure",
        "catalog": "catalog",
        "tokens": "tokens",
        "train": "train",
        "summary": "summary",
        **({"apogee_spectra": "apogee_spectra_mock"} if mock else {}),
    }  # real: with inputs.aspcapstar
    for rule, script in scripts.items():
        assert _code(inputs[rule]) == set(code_of(f"workflow/scripts/{script}.py", "src")), rule
    assert "src/pipeline/sky/sed.py" in inputs["evaluate"]  # evaluate[extinction_curve] runs the mock's SED
    assert "src/pipeline/io/atomic.py" in inputs["catalog"] and not any("/sky/" in f for f in inputs["catalog"])
    figures = "src/pipeline/evaluate/figures/__init__.py"
    assert figures in inputs["figure"] and figures not in inputs["evaluate"]
    assert ("sky" in inputs) == mock


def _import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports anywhere in its body (lazy imports included)."""
    from pipeline.workflow.codedeps import _module_file, _module_name

    graph = {}
    for f in sorted((SRC / "pipeline").rglob("*.py")):
        name = _module_name(SRC, f)
        deps = {_module_name(SRC, m) for m in filter(None, (_module_file(SRC, d) for d in _imported_modules(SRC, f)))}
        graph[name] = deps - {name}
    return graph


def test_no_circular_import_in_the_package():
    """No two modules of src/pipeline import each other, directly or around a loop (imports inside
    functions count: a loop there is a layer that knows about the one above it). A package's
    __init__ and its own modules are not a loop."""
    graph = _import_graph()
    related = lambda a, b: a.startswith(b + ".") or b.startswith(a + ".")  # noqa: E731
    loops = []
    state: dict[str, int] = {}  # 1 on the current path, 2 done

    def visit(node, path):
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                loop = path[path.index(dep) :] + [dep]
                if not all(related(a, b) for a, b in zip(loop, loop[1:])):
                    loops.append(" -> ".join(loop))
            elif dep not in state:
                visit(dep, path + [dep])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not loops, loops


# Development and test are kept apart: what trains a model or chooses a setting reads the train and
# validation splits only. These functions and modules train or select; none may name the test split.
SELECTION_CODE = {
    "model/train.py": None,
    "model/data.py": None,
    "model/check.py": None,  # the held-out check: a development figure, on validation stars
    "engine.py": None,
    "checkpoints.py": None,  # the best epoch kept
    "spectrafm/train.py": None,  # the stages, their mixes and their best-epoch choice
    "spectrafm/fcnn.py": None,  # the FCNN beside the [Fe/H] fine-tune
    "spectrafm/plan.py": None,
    "baselines/xgb.py": ("fit_tuned", "grid_points"),  # the expert's early stopping and grid (train_expert scores on test)
    "search/contrastive.py": ("train_search", "_search_training", "_val_loss", "search_stars"),
}


def _names_test_split(node) -> list[int]:
    import ast

    return [n.lineno for n in ast.walk(node) if isinstance(n, ast.Constant) and n.value == "test"]


def test_no_training_or_selection_path_reads_the_test_split():
    import ast

    found = []
    for rel, functions in SELECTION_CODE.items():
        tree = ast.parse((SRC / "pipeline" / rel).read_text())
        if functions is None:
            found += [f"{rel}:{line}" for line in _names_test_split(tree)]
            continue
        defs = {n.name: n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
        missing = set(functions) - set(defs)
        assert not missing, f"{rel}: no function {sorted(missing)} (renamed? update SELECTION_CODE)"
        found += [f"{rel}:{line} ({f})" for f in functions for line in _names_test_split(defs[f])]
    assert not found, f"training or selection code names the test split: {found}"


def test_the_held_out_check_scores_validation_stars():
    from pipeline.model.check import CHECK_SPLIT

    assert CHECK_SPLIT == "val"
