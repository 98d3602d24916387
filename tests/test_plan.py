"""The run's plan (pipeline.workflow.plan), apart from Snakemake: which branches run, each model's
train settings, the claims' variants and where each variant's SpectraFM stage lives."""

import copy

import yaml

from conftest import REPO
from pipeline.configuration import with_library_defaults
from pipeline.sky.defaults import with_sky_defaults
from pipeline.workflow.plan import VARIANT_PREFIX, Plan, fcnn_stage


def _config(**changes):
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    for dotted, value in changes.items():
        node = config
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return with_sky_defaults(with_library_defaults(config))


def test_the_models_train_settings_base_mass_age_and_variants():
    plan = Plan(_config(), "R", mock=True)
    assert plan.train_settings("small") is plan.config["train"]
    mass_age = plan.train_settings("mass_age")
    assert mass_age["epochs_per_cycle"] == 32 and mass_age["lr"] == 0.001 and mass_age["preset"] == "small"
    assert plan.init_model("mass_age") == ["R/models/small/model.pt"] and plan.init_model("small") == []
    assert plan.token_store("mass_age") == "R/mass_age/tokens.zarr" and plan.token_store("small") == "R/tokens/stars.zarr"
    half = plan.train_settings(f"{VARIANT_PREFIX}exp_lr_half")
    assert half["lr"] == 1.0e-3 and half["name"] == "claims-exp_lr_half" and half["epochs_per_cycle"] == 24
    # the seed equal to train.seed is the base model itself, not retrained
    assert plan.variant_model_dir("seed0") == "R/models/small" and plan.variant_model_dir("seed1") == "R/models/claims-seed1"


def test_variants_tasks_and_where_their_spectrafm_stages_live():
    plan = Plan(_config(), "R", mock=True)
    assert set(plan.seed_variants) == {"seed0", "seed1", "seed2"}
    assert plan.spectrafm_dir() == "R/spectrafm" and plan.spectrafm_dir("seed1", "pretrain") == "R/claims/seed1/spectrafm"
    assert "seed0" not in plan.spectrafm_variants  # the default run's seed: its SpectraFM is the default's
    # a SpectraFM-only experiment (mix: store) is evaluated on SpectraFM alone, its stages its own
    assert plan.variant_tasks("exp_spectrafm_mix_store") == ["spectrafm"]
    assert plan.spectrafm_dir("exp_spectrafm_mix_store", "pretrain") == "R/claims/exp_spectrafm_mix_store/spectrafm"
    assert plan.variant_metrics("seed0")[-1] == "R/eval/spectrafm/metrics.json"
    assert plan.spectrafm_init("finetune_real") == ["R/spectrafm/pretrain/model.pt"] and plan.spectrafm_init("pretrain") == []
    scaling = next(iter(plan.scaling_variants))
    assert set(plan.variant_tasks(scaling)) < set(plan.claims_tasks)
    # the FCNN: finetune_fe's stars and window with the fcnn block's schedule
    fcnn = fcnn_stage(plan.spectrafm_cfg)
    assert fcnn["n_stars"] == 100 and fcnn["epochs"] == 300 and "hidden" not in fcnn


def test_branches_off_say_why_and_the_tasks_follow_them():
    config = _config(**{"mass_age.enabled": False, "sky.apogee_spectra.enabled": False})
    plan = Plan(copy.deepcopy(config), "R", mock=True)
    off = plan.branches_off(catalog_all=False, catalog_all_truth=False)
    assert "SpectraFM: sky.apogee_spectra.enabled is false" in off
    assert "mass/age model (Zhang et al.): mass_age.enabled is false" in off
    assert any(line.startswith("catalogue of every XP source") for line in off)
    tasks = plan.eval_tasks(catalog_all_truth=False)
    assert "spectrafm" not in tasks and "mass_age" not in tasks and "catalog_all" not in tasks and "attention" in tasks
    real = Plan(_config(mock=False), "R", mock=False)
    assert real.branches_off(True, False) == [
        "SpectraFM: inputs.aspcapstar is empty",
        "catalog_all's evaluation against the truth: only on the mock's own XP sources",
    ]
    assert Plan(_config(), "R", mock=True).upstream("sky")["sky"].get("apogee_spectra") is None
