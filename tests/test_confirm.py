"""The confirmation sky (configs/confirm.yaml): every data seed of the default run changed, the
training seeds kept (the seeds target varies those), its results where the findings look for them."""

import yaml

from conftest import REPO
from pipeline.configuration import with_library_defaults
from pipeline.evaluate.findings import CONFIRM_FOLDER
from pipeline.sky.defaults import with_sky_defaults

# every seed of the completed configuration, by what it draws
DATA_SEEDS = {
    "sky.seed",  # the stars
    "sky.dust.seed",  # the dust map
    "sky.apogee_spectra.seed",  # which stars have APOGEE spectra, their noise and the synthetic gap
    "sky.xp_all.seed",  # the all-sky XP sources
    "catalog.extinction.seed",  # the Monte Carlo of E(B-V) through the dust map
    "catalog_all.seed",  # the same for the all-sky sources
    "difficulty.seed",  # the mock-difficulty check's split
    "tokens.split_seed",  # the base model's train / val / test stars
    "spectrafm.split.seed",  # SpectraFM's train / val / test stars
    "evaluate.seed",  # the bootstrap's resamples
}
TRAINING_SEEDS = {"train.seed", "claims.seeds", "search.seed", "baselines.xgboost.seed"}


def _seeds(config: dict) -> dict:
    out = {}

    def walk(d, path):
        for k, v in d.items():
            p = f"{path}.{k}" if path else k
            if isinstance(v, dict):
                walk(v, p)
            elif "seed" in k:
                out[p] = v

    walk(config, "")
    return out


def _merged(*files):
    def merge(a, b):
        for k, v in b.items():
            a[k] = merge(a.get(k) or {}, v) if isinstance(v, dict) else v
        return a

    config = {}
    for f in files:
        merge(config, yaml.safe_load((REPO / f).read_text()))
    return with_sky_defaults(with_library_defaults(config))


def test_the_confirmation_sky_differs_in_every_data_seed_and_keeps_the_training_seeds():
    default, confirm = _seeds(_merged("config.yaml")), _seeds(_merged("config.yaml", "configs/confirm.yaml"))
    assert set(default) == DATA_SEEDS | TRAINING_SEEDS, "a seed is neither a data seed nor a training seed: classify it here"
    for key in DATA_SEEDS:
        assert confirm[key] != default[key], f"{key} is the default sky's on the confirmation sky"
    for key in TRAINING_SEEDS:
        assert confirm[key] == default[key], f"{key}: the confirmation sky changes the data only"


def test_the_confirmation_sky_has_its_own_folders_where_the_findings_read_them():
    paths = yaml.safe_load((REPO / "configs/confirm.yaml").read_text())["paths"]
    default = yaml.safe_load((REPO / "config.yaml").read_text())["paths"]
    assert paths["results"] == f"{default['results']}/{CONFIRM_FOLDER}"
    assert paths["mock_sky"] != default["mock_sky"]
