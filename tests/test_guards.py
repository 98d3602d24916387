"""The Snakefile's guards (src/pipeline/workflow/guards.py) and the rules' benchmark files, without Snakemake."""

import dataclasses
import json
import re
from types import SimpleNamespace

import pytest
import yaml

from conftest import REPO
from pipeline.workflow.guards import (
    ConfigError,
    check_no_writes_into,
    coerce_command_line_values,
    protected_folders,
    refuse_renamed_keys,
    written_paths,
)
from pipeline.workflow.jobs import benchmark_path


def test_command_line_strings_become_booleans_and_numbers():
    # what snakemake --config mlflow='{enabled: false}' train='{epochs_per_cycle: 3}' hands the Snakefile
    cli = {"mlflow": {"enabled": "false"}, "train": {"epochs_per_cycle": "3", "name": "run_7"}, "tokens": {"extra": ["mass"]}}
    config = {
        "mlflow": {"enabled": "false", "experiment": "x"},
        "train": {"epochs_per_cycle": "3", "name": "run_7", "lr": 0.1},
        "tokens": {"extra": ["mass"]},
    }
    coerce_command_line_values(config, cli)
    assert config["mlflow"] == {"enabled": False, "experiment": "x"}
    assert config["train"] == {"epochs_per_cycle": 3, "name": "run_7", "lr": 0.1}
    assert config["tokens"]["extra"] == ["mass"]


def test_the_old_sky_path_key_is_refused_with_its_new_name():
    with pytest.raises(ConfigError, match="paths.sky was renamed to paths.mock_sky"):
        refuse_renamed_keys({"paths": {"sky": "/data", "results": "r"}})
    refuse_renamed_keys({"paths": {"mock_sky": "m", "results": "r"}})


def _rule(name, output=(), log=(), benchmark=None):
    """A stand-in for a Snakemake rule: plain strings for its files."""
    return SimpleNamespace(name=name, output=list(output), log=list(log), benchmark=benchmark)


def test_no_rule_may_write_inside_or_above_a_folder_of_inputs(tmp_path):
    data = tmp_path / "data"
    (data / "xp").mkdir(parents=True)
    (data / "allStar.fits").write_bytes(b"")
    protected = protected_folders({"allstar": data / "allStar.fits", "xp_continuous": data / "xp"})
    assert protected == {"allstar": data, "xp_continuous": data / "xp"}
    ok = [_rule("catalog", [str(tmp_path / "results/catalog/catalog.parquet")], [str(tmp_path / "results/logs/catalog.log")])]
    check_no_writes_into(protected, written_paths(ok))
    inside = [_rule("train", [str(data / "results/models/{name}/model.pt")])]
    with pytest.raises(ConfigError, match=r"rule train would write .*data/results/models, inside .*data, which holds inputs.allstar"):
        check_no_writes_into(protected, written_paths(inside))
    above = [_rule("evaluate", [str(tmp_path / "{task}/metrics.json")])]  # a pattern that could land in data/
    with pytest.raises(ConfigError, match=r"above .*data"):
        check_no_writes_into(protected, written_paths(above))


def test_every_rule_has_a_benchmark_file_beside_its_log():
    """The benchmark directives follow jobs.benchmark_path, which finds a job's file for its MLflow run."""
    for smk in sorted((REPO / "workflow/rules").glob("*.smk")):
        text = smk.read_text()
        n_rules = len(re.findall(r"^\s*(?:rule \w+|use rule \w+ as \w+ with):", text, flags=re.M))
        pairs = re.findall(r'log:\s*\n\s*f"([^"]+)",\s*\n\s*benchmark:\s*\n\s*f"([^"]+)"', text)
        assert len(pairs) == n_rules, f"{smk.name}: {n_rules} rules, {len(pairs)} with a log and a benchmark"
        for log, bench in pairs:
            assert bench == str(benchmark_path(log)), (smk.name, log, bench)


def test_a_published_model_to_import_is_an_input_the_workflow_never_writes_near(tmp_path):
    from pipeline.workflow.guards import check_inputs_exist, configured_inputs

    config = {"inputs": {}, "train": {"import_from": str(tmp_path / "model_torch")}}
    inputs = configured_inputs(config)
    with pytest.raises(ConfigError, match=r"train.import_from: .*model_torch does not exist"):
        check_inputs_exist(inputs)
    (tmp_path / "model_torch").mkdir()
    check_inputs_exist(inputs)
    inside = [_rule("train", [str(tmp_path / "model_torch/results/model.pt")])]
    with pytest.raises(ConfigError, match=r"which holds train.import_from"):
        check_no_writes_into(protected_folders(inputs), written_paths(inside))


def test_the_schema_and_the_settings_dataclasses_name_the_same_keys():
    """Each config block read by a settings dataclass has, in the schema, exactly the dataclass's
    fields plus the workflow's own keys (names, presets, devices to ask a cluster for, branches):
    a setting cannot be added to one and forgotten in the other."""

    from conftest import REPO
    from pipeline.apply.catalogue import CatalogAllConfig
    from pipeline.baselines.xgb import ExpertConfig
    from pipeline.catalog.build import CatalogConfig
    from pipeline.model.settings import TrainConfig
    from pipeline.search.settings import SearchConfig
    from pipeline.sky.build import SkyConfig
    from pipeline.vac.mass_age import MassAgeCuts

    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    defs, top = schema["$defs"], schema["properties"]

    def keys(node):
        out = set(node.get("properties", {}))
        return out | keys(defs[node["$ref"].split("/")[-1]]) if "$ref" in node else out

    blocks = {  # block: (schema node, dataclass, the workflow's own keys)
        "train": (top["train"], TrainConfig, {"name", "preset", "model", "gpus", "import_from"}),
        "mass_age.train": (top["mass_age"]["properties"]["train"], TrainConfig, {"name", "preset", "model", "gpus", "init_from_base"}),
        "catalog": (top["catalog"], CatalogConfig, set()),
        "catalog_all": (top["catalog_all"], CatalogAllConfig, set()),
        "mass_age.cuts": (top["mass_age"]["properties"]["cuts"], MassAgeCuts, set()),
        "sky": (top["sky"], SkyConfig, {"apogee_spectra", "xp_all"}),
        "search": (top["search"], SearchConfig, set()),
        "baselines.xgboost": (top["baselines"]["properties"]["xgboost"], ExpertConfig, set()),
    }
    for block, (node, cls, own) in blocks.items():
        fields = {f.name for f in dataclasses.fields(cls)}
        assert keys(node) - own == fields, (block, sorted((keys(node) - own) ^ fields))


def test_docs_configuration_is_the_settings_as_they_are():
    """docs/configuration.md is `python -m pipeline config --markdown`: a setting added, removed or
    given another default or comment without regenerating the file fails here."""
    from conftest import REPO
    from pipeline.configuration import configuration_doc

    assert (REPO / "docs/configuration.md").read_text() == configuration_doc() + "\n", (
        "docs/configuration.md is stale: python -m pipeline config --markdown > docs/configuration.md"
    )


def _library_defaults() -> dict:
    """Every setting's default, by config block, from its one home in the code: the settings dataclasses
    (the library's, the evaluation tasks', SpectraFM's, Dask's, the mock sky's) and the mock's reports'
    keyword defaults."""
    from pipeline.configuration import FILLED, blocks, completed
    from pipeline.dask_cluster import DaskConfig
    from pipeline.evaluate.settings import TASK_SETTINGS, Shared
    from pipeline.sky.defaults import with_sky_defaults
    from pipeline.spectrafm.model import FCNNConfig, SpectraFMConfig
    from pipeline.spectrafm.train import StageConfig

    homes = {block: completed({}, blocks()[block]) for block in FILLED}
    homes["evaluate"] = {**completed({}, Shared), **{task: completed({}, cls) for task, cls in TASK_SETTINGS.items()}}
    sky = with_sky_defaults({})
    homes.update({"sky": sky["sky"], "realism": sky["realism"], "difficulty": sky["difficulty"], "dask": completed({}, DaskConfig)})
    stage = completed({}, StageConfig)
    names = ("pretrain", "finetune_real", "finetune_fe")
    homes["spectrafm"] = {"fcnn": completed({}, FCNNConfig), "model": completed({}, SpectraFMConfig), "stages": dict.fromkeys(names, stage)}
    return homes


# config.yaml's blocks whose settings have no default in the code: config.yaml is their one home
WORKFLOW_OWN = {
    "mock": "which sky",
    "paths": "where the run writes",
    "inputs": "the user's files",
    "validation": "the mock catalog's checks against its truth",
    "tokens": "the vocabulary's extras and the split",
    "mass_age": "the VAC's column names and the second model's overlay of train",
    "claims": "the seeds, scaling and experiment targets",
    "baselines": "which experts (xgboost: the library's, checked)",
    "mlflow": "the tracking store",
}
# keys inside a library block that the workflow reads itself (not a library setting restated)
WORKFLOW_KEYS = {"enabled", "device", "processes", "name", "preset", "model", "gpus", "tasks", "stages", "split"}


def test_config_yaml_holds_only_the_values_that_differ_from_the_library_defaults():
    """One home for each default: every block of config.yaml either has its defaults in the code (and
    then holds only what the default run changes) or is the workflow's own (WORKFLOW_OWN, with why)."""
    from conftest import REPO

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    homes = _library_defaults()
    homes["baselines"] = {"xgboost": homes.pop("baselines.xgboost")}
    homes["mass_age"] = {"cuts": homes.pop("mass_age.cuts")}
    unclassified = set(config) - set(homes) - set(WORKFLOW_OWN)
    assert not unclassified, f"config.yaml blocks {sorted(unclassified)}: give them a home in the code or list them in WORKFLOW_OWN"

    def same(a, b):
        return (list(a) if isinstance(a, list | tuple) else a) == (list(b) if isinstance(b, list | tuple) else b)

    def walk(node, defaults, path):
        for key, value in (node or {}).items():
            if key not in defaults:
                continue
            where = f"{path}.{key}"
            if isinstance(value, dict) and isinstance(defaults[key], dict):
                walk(value, defaults[key], where)
            elif key not in WORKFLOW_KEYS:
                assert not same(value, defaults[key]), f"config.yaml: {where} restates the default {value!r}"

    for block, defaults in homes.items():
        walk(config.get(block), defaults, block)
    # the spectrafm stages: each against StageConfig's defaults
    for name, stage in (config["spectrafm"]["stages"] or {}).items():
        walk(stage, homes["spectrafm"]["stages"]["pretrain"], f"spectrafm.stages.{name}")


def test_the_mock_sky_blocks_are_completed_from_the_sky_code():
    """With the restated values gone, the Snakefile completes the mock's blocks (sky, its xp_all and
    apogee_spectra, realism, difficulty) from the sky's dataclasses and reports; given values win."""
    from pipeline.sky.apogee import SyntheticGap
    from pipeline.sky.defaults import with_sky_defaults

    config = with_sky_defaults({"sky": {"n_stars": 7, "apogee_spectra": {"n_stars": 9, "gap": {"missing_every": 3}}}})
    sky = config["sky"]
    assert sky["n_stars"] == 7 and sky["seed"] == 42 and sky["dust"]["seed"] == 19 and sky["xp_all"]["partitions"] == 4
    assert sky["apogee_spectra"]["n_stars"] == 9 and sky["apogee_spectra"]["seed"] == 8
    assert sky["apogee_spectra"]["gap"]["missing_every"] == 3
    assert sky["apogee_spectra"]["gap"]["depth_scale"] == SyntheticGap().depth_scale
    assert config["realism"] == {"tolerance": 0.35, "logebv_tolerance": 0.5}
    assert config["difficulty"]["xgboost"] == {"n_estimators": 600, "max_depth": 6, "learning_rate": 0.05}


def test_the_workflow_completes_each_block_from_the_library_defaults():
    """with_library_defaults: absent blocks and keys get the dataclass defaults (nested ones too, as
    YAML holds them), given values win, the workflow's own keys stay."""
    from pipeline.catalog.build import CatalogConfig
    from pipeline.configuration import with_library_defaults
    from pipeline.model.settings import TrainConfig

    config = with_library_defaults({"train": {"name": "m", "lr": 0.5}, "catalog": {"extinction": {"n_samples": 7}}, "mass_age": {}})
    assert config["train"]["name"] == "m" and config["train"]["lr"] == 0.5 and config["train"]["held_out"] == ["bprp", "jk"]
    assert config["catalog"]["extinction"] == {"n_samples": 7, "chunk_stars": 2000, "seed": 1, "cluster": "local"}
    assert config["catalog"]["ruwe_max"] == 1.4 and config["mass_age"]["cuts"]["evstate"] == [1, 2]
    assert config["catalog_all"]["requests"] == ["teff", "logg", "m_h", "logebv", "g_fakemag"]
    assert TrainConfig.from_dict({k: v for k, v in config["train"].items() if k != "name"}).lr == 0.5
    assert CatalogConfig.from_dict(config["catalog"]).extinction.n_samples == 7


def test_docs_benchmarks_is_written_from_the_recorded_files():
    """docs/benchmarks.md is `benchmarks/record.py doc` of benchmarks/recorded/: no figure typed by hand."""
    from conftest import REPO, benchmark_module

    record = benchmark_module("record")
    assert list((REPO / "benchmarks/recorded").glob("*.json")), "no recorded benchmark"
    assert (REPO / "docs/benchmarks.md").read_text() == record.render(REPO / "benchmarks/recorded"), (
        "docs/benchmarks.md is stale: .venv/bin/python benchmarks/record.py doc"
    )


def test_a_benchmark_is_recorded_with_its_machine_and_last_line(tmp_path, monkeypatch):
    import sys

    from conftest import benchmark_module

    record = benchmark_module("record")
    monkeypatch.setattr(record, "RECORDS", tmp_path)
    assert record.main(["run", "demo", "--", sys.executable, "-c", "print('a'); print('ratios: 2.0x')"]) == 0
    rec = json.loads((tmp_path / "demo.json").read_text())
    assert rec["last_line"] == "ratios: 2.0x" and rec["machine"]["cores"] >= 1 and rec["output"] == ["a", "ratios: 2.0x"]
    assert record.main(["run", "bad", "--", sys.executable, "-c", "raise SystemExit(3)"]) == 3
    assert not (tmp_path / "bad.json").exists()
    assert "**ratios: 2.0x**" in record.render(tmp_path)
