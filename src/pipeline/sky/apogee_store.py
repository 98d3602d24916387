"""The mock's APOGEE stars for SpectraFM and their store: which of the sky's APOGEE stars have spectra
(over-sampling the rare iron-poor ones), their abundances ([O/Fe], [Mg/Fe] along the two disc
sequences) and ASPCAP-like label errors, and ``build_mock_store``, which writes their synthetic and
observed spectra (sky/apogee.py's line model) into the SpectraFM pixel store."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..spectrafm.aspcap import aspcap_wavelength_aa
from ..spectrafm.store import LABELS, write_spectra_store
from .apogee import SyntheticGap, observed_spectra, synthetic_spectra


def alpha_over_iron_dex(fe_h_dex, high_alpha):
    """[alpha/Fe] of the two disc sequences: the low-alpha (thin disc) one falls from +0.10 at
    [Fe/H] = -1 to 0 at solar and -0.05 above; the high-alpha (thick disc, halo) plateau is +0.30
    below [Fe/H] = -0.7 and falls by 0.25 dex per dex to +0.125 at solar (+0.10 from +0.1 up)."""
    fe = np.asarray(fe_h_dex, float)
    low = np.clip(-0.1 * fe, -0.05, 0.10)
    high = 0.30 - 0.25 * np.clip(fe + 0.7, 0.0, 0.8)
    return np.where(high_alpha, high, low)


def mock_abundances(fe_h_dex, rng):
    """True [Mg/Fe] and [O/Fe] (dex) of stars: every star below [Fe/H] = -1 and 20% of the others
    are high-alpha; Mg scatters by 0.02 dex about the sequence, O follows it with slope 1.1 and 0.03 dex."""
    fe = np.asarray(fe_h_dex, float)
    high = (fe < -1.0) | (rng.random(fe.size) < 0.2)
    alpha = alpha_over_iron_dex(fe, high)
    mg_fe = alpha + rng.normal(0, 0.02, fe.size)
    o_fe = 1.1 * alpha + rng.normal(0, 0.03, fe.size)
    return mg_fe, o_fe


def aspcap_label_errors(snr):
    """ASPCAP-like 1-sigma label errors (teff K, logg/abundances dex) that shrink with SNR: at SNR 100
    about 12 K, 0.03, 0.010, 0.025, 0.015 dex."""
    f = (100.0 / np.clip(np.asarray(snr, float), 10, None)) ** 0.8
    return {"teff": 12.0 * f, "logg": 0.03 * f, "fe_h": 0.010 * f, "o_fe": 0.025 * f, "mg_fe": 0.015 * f}


TEFF_RANGE_K = (3500.0, 7000.0)  # the line model's Teff range: the survey the mock's spectra are drawn from


def eligible_mock_stars(truth: pd.DataFrame, teff_range_k=TEFF_RANGE_K) -> np.ndarray:
    """Rows of the sky's APOGEE stars with good labels in the line model's Teff range: the survey
    the mock's spectra are drawn from."""
    ok = truth["apogee_id"].astype(str).str.len().gt(0) & truth["teff"].between(*teff_range_k)
    if "labels_good" in truth:
        ok &= truth["labels_good"].astype(bool)
    return np.flatnonzero(ok.to_numpy())


def survey_fe_h_poor_fraction(truth: pd.DataFrame, teff_range_k=TEFF_RANGE_K) -> float:
    """The share of iron-poor stars ([M/H] < -1) in the survey (``eligible_mock_stars``): ~4% on
    the default sky, as in APOGEE; the store over-samples them, and a stage with ``mix: survey``
    trains on this share (``spectrafm.train.survey_mix``)."""
    idx = eligible_mock_stars(truth, teff_range_k)
    return float(np.mean(truth["m_h"].to_numpy()[idx] < -1.0))


def select_mock_stars(truth: pd.DataFrame, n_stars: int, metal_poor_fraction: float, rng, teff_range_k=TEFF_RANGE_K):
    """Rows of the survey's stars (``eligible_mock_stars``); iron-poor stars ([M/H] < -1) make up
    ``metal_poor_fraction`` of them where there are enough (they are rare in the disc, and the
    transfer test of SpectraFM is about them: its intervals need ~150 of them among the test stars)."""
    idx = eligible_mock_stars(truth, teff_range_k)
    poor = idx[truth["m_h"].to_numpy()[idx] < -1.0]
    rich = np.setdiff1d(idx, poor)
    n_poor = min(poor.size, int(round(metal_poor_fraction * n_stars)))
    n_rich = min(rich.size, n_stars - n_poor)
    picked = np.concatenate([rng.choice(poor, n_poor, replace=False), rng.choice(rich, n_rich, replace=False)])
    return np.sort(picked)


def build_mock_store(
    truth_path,
    allstar_path,
    out_path,
    n_stars: int = 3000,
    metal_poor_fraction: float = 0.25,
    gap: SyntheticGap | None = None,
    bad_pixel_fraction: float = 0.02,
    split=(0.8, 0.1, 0.1),
    seed: int = 8,
    split_seed: int = 8,
    chunk_stars: int = 256,
):
    """Mock APOGEE spectra for a subset of the sky's APOGEE stars.

    The observed spectrum is made from the true labels (with the synthetic gap, a continuum ripple,
    noise of the star's allStar SNR and bad pixels); the synthetic one, like ASPCAP's best fit,
    from the ASPCAP-like labels (truth plus their errors) with the synthetic model's physics."""
    from ..io.readers import read_allstar, read_parquet_table

    rng = np.random.default_rng(seed)
    truth = read_parquet_table(truth_path, ("apogee_id", "teff", "logg", "m_h", "labels_good"))
    rows = select_mock_stars(truth, n_stars, metal_poor_fraction, rng)
    stars = truth.iloc[rows].reset_index(drop=True)
    allstar = read_allstar(allstar_path, ["APOGEE_ID", "SNR"]).drop_duplicates("APOGEE_ID").set_index("APOGEE_ID")
    snr = allstar["SNR"].reindex(stars["apogee_id"]).to_numpy(float)
    snr = np.where(np.isfinite(snr) & (snr > 0), snr, 100.0)
    mg_fe, o_fe = mock_abundances(stars["m_h"].to_numpy(float), rng)
    true = pd.DataFrame({"teff": stars["teff"], "logg": stars["logg"], "fe_h": stars["m_h"], "o_fe": o_fe, "mg_fe": mg_fe})
    errors = aspcap_label_errors(snr)
    labels = pd.DataFrame({k: true[k] + errors[k] * rng.standard_normal(len(true)) for k in LABELS})
    table = pd.DataFrame(
        {
            "apogee_id": stars["apogee_id"].astype(str),
            **labels,
            **{f"{k}_err": errors[k] for k in LABELS},
            **{f"true_{k}": true[k] for k in LABELS},
            "snr": snr,
        }
    )

    def spectra(start, stop):
        sl = slice(start, stop)
        observed, err = observed_spectra(true.iloc[sl], snr[sl], np.random.default_rng([seed, start]), gap, bad_pixel_fraction)
        return synthetic_spectra(labels.iloc[sl], gap), observed, err

    write_spectra_store(
        out_path,
        aspcap_wavelength_aa(),
        table,
        spectra,
        split,
        split_seed,
        chunk_stars,
        attrs={
            "source": "mock",
            "gap": vars(gap or SyntheticGap()),
            "bad_pixel_fraction": bad_pixel_fraction,
            "survey_fe_h_poor_fraction": survey_fe_h_poor_fraction(truth),
        },
    )
