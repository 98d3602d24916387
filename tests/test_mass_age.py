"""Mass and age tokens of evolved stars: the VAC reader, the cuts and join, starting from a trained
model with a larger vocabulary, and the physics of the mass-luminosity figure."""

import json
import logging

import numpy as np
import pandas as pd
import pytest
import torch
from astropy.table import Table

from conftest import real_sample
from pipeline.evaluate import science
from pipeline.evaluate.mass_age import coverage
from pipeline.model.model import StellarTransformer, preset
from pipeline.model.train import TrainConfig, init_from_model, train
from pipeline.tokens.store import assign_split, build_token_store
from pipeline.tokens.vocab import vocabulary
from pipeline.vac.mass_age import MassAgeCuts, join_mass_age, read_mass_age_table


def _vac(tmp_path, **cols):
    t = Table(
        {
            "APOGEE_ID": ["2M0001", "2M0002", "2M0003", "2M0002", "2M0009"],
            "MASS": [1.2, 0.9, 5.0, 0.8, 1.0],
            "MASS_ERR": [0.1, 0.05, 0.2, 0.05, 0.1],
            "AGE": [4.0, 9.0, 0.5, 2.0, 3.0],
            "AGE_ERR": [1.0, 2.0, 0.1, 0.5, 0.5],
            "EVSTATE": [1, 2, 1, 1, 0],
            **cols,
        }
    )
    path = tmp_path / "distmass.fits"
    t.write(path)
    return path


def test_reader_takes_configured_columns_and_keeps_the_first_duplicate(tmp_path, caplog):
    path = _vac(tmp_path)
    with caplog.at_level(logging.WARNING):
        vac = read_mass_age_table(path)
    assert "repeated APOGEE_IDs" in caplog.text
    assert vac.apogee_id.tolist() == ["2M0001", "2M0002", "2M0003", "2M0009"]
    assert vac.set_index("apogee_id").loc["2M0002", "mass"] == pytest.approx(0.9)  # the first row of 2M0002
    t = Table({"id": ["a", "b"], "m": [1.0, 2.0], "m16": [0.9, 1.8], "m84": [1.1, 2.4], "tau": [3.0, 4.0], "tau_e": [0.3, 0.4]})
    t.write(tmp_path / "other.fits")
    other = read_mass_age_table(
        tmp_path / "other.fits",
        {"apogee_id": "id", "mass": "m", "mass_err": ["m16", "m84"], "age": "tau", "age_err": "tau_e", "evstate": None},
    )
    np.testing.assert_allclose(other.mass_err, [0.1, 0.3])  # half of p84 - p16
    assert "evstate" not in other
    with pytest.raises(ValueError, match=r"missing required column\(s\) \['APOGEE_ID', 'MASS'.*mass_age.columns"):
        read_mass_age_table(tmp_path / "other.fits")


def test_reader_takes_a_real_asteroseismic_catalogue():
    """95 real APOGEE DR17 giants with Montalban et al. (2021) masses and ages (16th/84th percentiles)."""
    path = real_sample("apogee_dr17_allstar_95giants.fits")
    vac = read_mass_age_table(
        path, {"mass": "mass", "mass_err": ["mass_16", "mass_84"], "age": "age", "age_err": ["age_16", "age_84"], "evstate": None}
    )
    assert len(vac) == 95 and vac.apogee_id.str.startswith("2M").all()
    assert vac.mass.between(0.7, 2.0).all() and (vac.mass_err > 0).all() and vac.age.between(1, 18).all()
    cat = pd.DataFrame({"apogee_id": vac.apogee_id, "teff": 4700.0, "logg": 2.5})
    _, counts = join_mass_age(cat, vac, MassAgeCuts(evstate=None))
    assert counts["catalog stars in the VAC"] == 95 and 0 < counts["with mass and age tokens"] <= 95


def test_join_keeps_rows_and_order_and_applies_each_cut(tmp_path):
    vac = read_mass_age_table(_vac(tmp_path))
    cat = pd.DataFrame(
        {
            "apogee_id": ["2M0003", "2M0001", "2M0007", "2M0002", "2M0009"],
            "teff": [4500.0, 4800.0, 5000.0, 4600.0, 4700.0],
            "logg": [2.0, 2.4, 2.0, 3.9, 2.0],
        }
    )
    out, counts = join_mass_age(cat, vac, MassAgeCuts())
    assert out.apogee_id.tolist() == cat.apogee_id.tolist()
    # 2M0003: mass 5 > 4; 2M0007: not in the VAC; 2M0002: logg 3.9; 2M0009: EVSTATE 0
    np.testing.assert_allclose(out.mass, [np.nan, 1.2, np.nan, np.nan, np.nan])
    np.testing.assert_allclose(out.age_err, [np.nan, 1.0, np.nan, np.nan, np.nan])
    assert counts["catalog stars in the VAC"] == 4 and counts["with mass and age tokens"] == 1
    assert counts["failing: mass within [0.5, 4.0] Msun"] == 1
    assert counts["failing: APOGEE logg < 3.5"] == 1 and counts["failing: evstate in [1, 2]"] == 1
    relaxed, counts = join_mass_age(cat, vac, MassAgeCuts(evstate=None, logg_max=None, mass_range_msun=(0.5, 6.0)))
    assert counts["with mass and age tokens"] == 4


def test_the_mass_age_store_shares_the_base_split_and_standardisation(tmp_path):
    """The second store has the base catalog's rows in order: the same split (no test star of the base
    model is trained on by the model that starts from it) and the same median/MAD for the base tokens."""
    rng = np.random.default_rng(0)
    n = 300
    cat = pd.DataFrame({"source_id": np.arange(n)})
    for t in vocabulary():
        cat[t], cat[f"{t}_err"] = rng.normal(size=n), 0.1
    base = build_token_store(cat, tmp_path / "a.zarr", vocabulary())
    cat["mass"], cat["mass_err"], cat["age"], cat["age_err"] = rng.uniform(0.8, 2, n), 0.1, rng.uniform(1, 10, n), 1.0
    ext = build_token_store(cat, tmp_path / "b.zarr", vocabulary(["mass", "age"]))
    assert ext["median"][:118] == base["median"] and ext["mad_std"][:118] == base["mad_std"]
    np.testing.assert_array_equal(assign_split(n), assign_split(n))


def test_init_from_model_copies_known_tokens_by_name_and_starts_new_ones_fresh(tmp_path):
    torch.manual_seed(0)
    old = StellarTransformer(preset("tiny"))
    (tmp_path / "base").mkdir()
    torch.save(old.state_dict(), tmp_path / "base/model.pt")
    (tmp_path / "base/config.json").write_text(json.dumps({"vocabulary": list(vocabulary())}))
    new = StellarTransformer(preset("tiny", vocab_size=120))
    fresh = new.embedding.weight[119:].detach().clone()  # rows 119, 120: mass and age (row 0 is padding)
    init_from_model(new, list(vocabulary(["mass", "age"])), tmp_path / "base")
    torch.testing.assert_close(new.embedding.weight[:119], old.embedding.weight)
    torch.testing.assert_close(new.embedding.bias[:119], old.embedding.bias)
    torch.testing.assert_close(new.embedding.weight[119:], fresh)
    torch.testing.assert_close(new.head.layers[0].weight, old.head.layers[0].weight)
    wrong = StellarTransformer(preset("small", vocab_size=120))
    with pytest.raises(ValueError, match="same preset"):
        init_from_model(wrong, list(vocabulary(["mass", "age"])), tmp_path / "base")


def test_training_from_a_base_model_starts_where_it_ended(tmp_path):
    """A model with two more tokens, started from a trained one, begins with the base model's
    validation loss on the tokens they share (not a random model's). 3,000 stars: the two stores'
    validation draws differ (their vocabularies do), and 60 validation stars' losses scatter by
    more than the tolerance."""
    rng = np.random.default_rng(1)
    n = 3000
    cat = pd.DataFrame({"source_id": np.arange(n)})
    teff = rng.normal(4800, 400, n)
    for t in vocabulary():
        cat[t] = teff if t == "teff" else rng.normal(size=n) + (teff - 4800) / 400
        cat[f"{t}_err"] = 0.05
    build_token_store(cat, tmp_path / "base.zarr", vocabulary(), chunk_stars=128)
    cfg = TrainConfig(epochs_per_cycle=3, cycles=1, batch_size=64, threads=1)
    _, base_hist = train(tmp_path / "base.zarr", tmp_path / "base", preset("tiny"), cfg, resume=False)
    cat["mass"], cat["mass_err"], cat["age"], cat["age_err"] = np.nan, np.nan, np.nan, np.nan
    build_token_store(cat, tmp_path / "ext.zarr", vocabulary(["mass", "age"]), chunk_stars=128)
    one = TrainConfig(epochs_per_cycle=1, cycles=1, batch_size=64, threads=1, lr=1e-6)
    _, warm = train(
        tmp_path / "ext.zarr", tmp_path / "warm", preset("tiny", vocab_size=120), one, resume=False, init_from=tmp_path / "base"
    )
    _, cold = train(tmp_path / "ext.zarr", tmp_path / "cold", preset("tiny", vocab_size=120), one, resume=False)
    assert warm[0]["val_loss"] < cold[0]["val_loss"]
    assert abs(warm[0]["val_loss"] - base_hist[-1]["val_loss"]) < 0.1


def test_luminosity_of_the_sun_and_of_a_giant_by_hand():
    assert science.log_luminosity_from_radius(1.0, 5772.0) == pytest.approx(0.0)
    assert science.log_luminosity_from_mass(1.0, 5772.0, 4.438) == pytest.approx(0.0)
    # R = 10 Rsun, Teff = 4772 K: 2 + 4 log10(4772/5772) = 2 - 0.33052 = 1.66948
    assert science.log_luminosity_from_radius(10.0, 4772.0) == pytest.approx(1.66948, abs=1e-4)
    # M = 1.2 Msun, Teff = 4800 K, logg 2.5: 0.07918 + 4 log10(4800/5772) + 1.938 = 1.69684
    assert science.log_luminosity_from_mass(1.2, 4800.0, 2.5) == pytest.approx(1.69684, abs=1e-4)


def test_coverage_counts_references_within_k_sigma():
    pred, ref, sig = np.array([1.0, 1.0, 1.0, np.nan]), np.array([1.5, 2.5, 0.2, 1.0]), np.array([1.0, 1.0, 1.0, 1.0])
    assert coverage(pred, ref, sig) == pytest.approx(2 / 3)
    assert coverage(pred, ref, sig, k=2) == pytest.approx(1.0)
