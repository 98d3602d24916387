"""The rules' conda environments (workflow/envs/*.yaml) agree with the pins of pyproject.toml."""

import re
import tomllib

import yaml

from conftest import REPO

ENVS = sorted((REPO / "workflow/envs").glob("*.yaml"))


def _name(requirement: str) -> str:
    """PEP 503 normalised project name, extras dropped: 'Dask[distributed]==1' -> 'dask'."""
    return re.sub(r"[-_.]+", "-", re.split(r"[\[=<>!~ ;]", requirement.strip(), maxsplit=1)[0]).lower()


def _pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return project, {_name(r): r.split(";")[0].strip() for r in project["dependencies"]}


def test_every_pin_in_an_environment_is_pyprojects_pin():
    project, pins = _pyproject()
    assert all("==" in r for r in pins.values()), "pyproject.toml: every dependency is pinned exactly"
    python = re.search(r"3\.\d+", project["requires-python"]).group(0)
    assert ENVS, "no environments in workflow/envs"
    for env in ENVS:
        spec = yaml.safe_load(env.read_text())
        deps = spec["dependencies"]
        assert f"python={python}" in deps, f"{env.name}: python must be {python} as in pyproject"
        pip = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
        assert "-e ../.." in pip, f"{env.name}: installs the pipeline itself"
        for req in pip:
            if req.startswith("-e"):
                continue
            name = _name(req)
            assert name in pins, f"{env.name}: {req} is not a dependency in pyproject.toml"
            assert req.replace(" ", "") == pins[name].replace(" ", ""), f"{env.name}: {req} but pyproject pins {pins[name]}"


def test_every_rule_names_an_existing_environment():
    rules = sorted((REPO / "workflow/rules").glob("*.smk"))
    named = set()
    for smk in rules:
        text = smk.read_text()
        n_rules = len(re.findall(r"^\s*rule \w+:", text, flags=re.M))
        envs = re.findall(r'conda:\s*\n\s*"\.\./envs/([\w.-]+\.yaml)"', text)
        assert len(envs) == n_rules, f"{smk.name}: {n_rules} rules but {len(envs)} conda: directives"
        named.update(envs)
    assert named <= {e.name for e in ENVS}, named - {e.name for e in ENVS}


def _merged(base: dict, over: dict) -> dict:
    """``over`` layered on ``base`` as Snakemake layers a --configfile (nested blocks merged)."""
    out = dict(base)
    for k, v in over.items():
        out[k] = _merged(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
    return out


def test_every_preset_in_configs_is_a_valid_configuration():
    from snakemake.utils import validate

    base = yaml.safe_load((REPO / "config.yaml").read_text())
    presets = sorted((REPO / "configs").glob("*.yaml"))
    assert {p.name for p in presets} >= {"tiny.yaml", "paper.yaml", "claims.yaml", "real-data.yaml"}
    for p in presets:
        config = _merged(base, yaml.safe_load(p.read_text()) or {})
        validate(config, str(REPO / "workflow/schemas/config.schema.yaml"))  # raises naming the key


def test_make_runs_report_step_has_its_packages_without_the_dev_tools():
    """`make run` installs the project without the `dev` extra and ends with `snakemake --report`,
    which refuses to run without pygments (the fresh-clone run of issue 46 stopped there: in a
    development checkout pytest had brought it in)."""
    _, pins = _pyproject()
    assert "pygments" in pins, "pyproject.toml: pygments is a dependency of `make run`'s report, not only of pytest"
