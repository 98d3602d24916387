"""The mock's APOGEE H-band spectra for SpectraFM: a line list at the real features' wavelengths
(spectrafm.aspcap) plus a seeded forest of weak lines, continuum-normalised spectra on the ASPCAP
grid (a clean synthetic one like ASPCAP's best fit and an observed one), and the mock's store of
them with its labels and truth (``build_mock_store``).

A line's depth at line centre is a saturating function of its strength
    s = s0 10^(abund + chi_teff (5000 - Teff) / 1000 + chi_logg (logg - 2.5)),   depth = d_max s / (1 + s),
with abund = [Fe/H], [Fe/H] + [Mg/Fe], [Fe/H] + [O/Fe], [Fe/H] + 0.5 [Mg/Fe] for Fe, Mg, O (OH), Si,
and for the Brackett lines a strength that grows with logg (pressure broadening, the Br11
sensitivity of Campbell et al. 2022). Profiles are Gaussians of the instrument's resolution
(R = 22,500) broadened by Teff. The observed spectrum differs from the synthetic one by a
systematic gap (observed depths scaled, lines the synthetic model lacks, a continuum ripple),
Gaussian noise of 1/SNR and bad pixels (NaN).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..spectrafm.aspcap import APOGEE_FEATURES, aspcap_wavelength_aa
from ..spectrafm.store import LABELS, write_spectra_store

RESOLUTION = 22_500
C_KMS = 299_792.458
# line strength parameters: (chi_teff, chi_logg) per element, and each feature's base strength s0
CHI = {"Fe": (0.25, 0.05), "Mg": (0.2, 0.1), "O": (0.6, 0.1), "Si": (0.15, 0.05), "H": (-0.4, 0.0)}
FEATURE_S0 = (
    1.2,
    1.5,
    1.3,
    0.8,
    1.0,
    1.0,
    1.4,
    0.9,
    0.9,
    1.1,
    1.1,
    1.0,
    1.3,
    1.2,
    1.0,
    1.0,
    1.2,
    2.0,
    2.2,
    2.4,
    0.8,
    0.7,
    0.6,
    0.7,
    0.8,
    0.7,
    0.6,
    0.9,
    1.4,
    1.0,
    1.1,
    1.2,
    1.3,
    0.5,
    0.6,
    0.7,
    0.8,
    0.9,
    1.0,
)
# (element, vacuum wavelength in Angstrom, base strength s0, chi_teff, chi_logg)
LINES = tuple((el, w, s0, *CHI[el]) for (el, w), s0 in zip(APOGEE_FEATURES, FEATURE_S0))
N_STRONG = len(LINES)


def _weak_lines(n: int = 400, seed: int = 2024):
    """A forest of weak lines (Fe, OH as O, Si, Mg) at seeded wavelengths, one every ~4.5 Angstrom as in
    real H-band spectra: without them a 256-pixel window (~57 A) would hold about one line and carry
    almost no information. Their wavelengths are the mock's, not real ones (``line_list().real``)."""
    rng = np.random.default_rng(seed)
    elements = rng.choice(["Fe", "O", "Si", "Mg"], size=n, p=[0.45, 0.25, 0.15, 0.15])
    params = {"Fe": (0.25, 0.05), "Mg": (0.2, 0.1), "O": (0.6, 0.1), "Si": (0.15, 0.05)}
    wavelength = np.sort(rng.uniform(15_160.0, 16_940.0, n))
    s0 = 10.0 ** rng.uniform(np.log10(0.03), np.log10(0.5), n)
    return tuple((str(el), round(float(w), 2), round(float(s), 3), *params[el]) for el, w, s in zip(elements, wavelength, s0))


LINES = LINES + _weak_lines()


def line_list() -> pd.DataFrame:
    """The mock's lines (element, wavelength in vacuum Angstrom, strength parameters; ``real``: a
    known APOGEE feature, else a line of the weak forest): part of the truth."""
    df = pd.DataFrame(LINES, columns=["element", "wavelength_aa", "s0", "chi_teff", "chi_logg"])
    return df.assign(real=np.arange(len(df)) < N_STRONG)


def line_abundance(element, fe_h, o_fe, mg_fe):
    """The abundance a line of ``element`` responds to (dex, relative to solar); Brackett lines: 0."""
    return {"Fe": fe_h, "Mg": fe_h + mg_fe, "O": fe_h + o_fe, "Si": fe_h + 0.5 * mg_fe}.get(element, 0.0 * fe_h)


def line_depth(s0, chi_teff, chi_logg, element, teff_k, logg_dex, abundance_dex, d_max: float = 0.85):
    """Depth at line centre (fraction of the continuum) of lines for stars: arrays broadcast (stars, lines)."""
    teff, logg, ab = (np.asarray(x, float) for x in (teff_k, logg_dex, abundance_dex))
    if element == "H":  # Brackett: stronger in hot stars and at high gravity (pressure broadening)
        s = s0 * 10.0 ** (chi_teff * (5000.0 - teff) / 1000.0 + 0.25 * (logg - 2.5))
    else:
        s = s0 * 10.0 ** (ab + chi_teff * (5000.0 - teff) / 1000.0 + chi_logg * (logg - 2.5))
    return d_max * s / (1.0 + s)


def line_sigma_aa(wavelength_aa, teff_k):
    """Gaussian width (Angstrom) of a line: the resolution R = 22,500 plus thermal/turbulent broadening growing with Teff."""
    instrument = np.asarray(wavelength_aa, float) / RESOLUTION / 2.3548
    v = 2.0 + 1.5 * (np.asarray(teff_k, float) / 5000.0)  # km/s
    return np.hypot(instrument, np.asarray(wavelength_aa, float) * v / C_KMS)


def brackett_sigma_aa(logg_dex):
    """Pressure (Stark) broadening of the Brackett lines (Angstrom): 1 A at logg 2.5, growing by
    10^0.35 per dex of gravity (about 5 A in dwarfs, 0.3 A in luminous giants): the H band's
    clearest gravity signal."""
    return 1.0 * 10.0 ** (0.35 * (np.asarray(logg_dex, float) - 2.5))


@dataclass
class SyntheticGap:
    """How observed spectra differ from the synthetic model (the "synthetic gap")."""

    depth_scale: float = 1.12  # observed lines are deeper than the model's
    missing_every: int = 7  # every k-th line of the list is absent from the synthetic model
    ripple_amplitude: float = 0.01  # a continuum ripple of the observed spectra
    ripple_period_aa: float = 180.0


def normalised_spectra(
    teff_k, logg_dex, fe_h, o_fe, mg_fe, wavelength_aa=None, depth_scale: float = 1.0, skip_lines=(), chunk: int = 256
) -> np.ndarray:
    """Continuum-normalised flux (stars x pixels) from the line list; ``skip_lines`` (indices) left out."""
    lam = aspcap_wavelength_aa() if wavelength_aa is None else np.asarray(wavelength_aa, float)
    teff, logg, fe, o, mg = (np.atleast_1d(np.asarray(x, float)) for x in (teff_k, logg_dex, fe_h, o_fe, mg_fe))
    out = np.empty((teff.size, lam.size), np.float32)
    skip = set(skip_lines)
    for s in range(0, teff.size, chunk):
        sl = slice(s, s + chunk)
        tau = np.zeros((teff[sl].size, lam.size))
        for k, (el, w, s0, ct, cg) in enumerate(LINES):
            if k in skip:
                continue
            d = np.minimum(depth_scale * line_depth(s0, ct, cg, el, teff[sl], logg[sl], line_abundance(el, fe[sl], o[sl], mg[sl])), 0.95)
            sig = line_sigma_aa(w, teff[sl])[:, None]
            if el == "H":
                sig = np.hypot(sig, brackett_sigma_aa(logg[sl])[:, None])
            near = np.abs(lam - w) < 6.0 * sig.max()
            prof = np.exp(-0.5 * ((lam[near][None, :] - w) / sig) ** 2)
            tau[:, near] += -np.log1p(-d[:, None] * prof)  # lines add in optical depth, not in depth
        out[sl] = np.exp(-tau)
    return out


def _label_arrays(labels: pd.DataFrame):
    return [labels[c].to_numpy(float) for c in ("teff", "logg", "fe_h", "o_fe", "mg_fe")]


def synthetic_spectra(labels: pd.DataFrame, gap: SyntheticGap | None = None) -> np.ndarray:
    """The synthetic model's spectra (stars x 7,514): nominal depths, every ``gap.missing_every``-th line absent."""
    gap = gap or SyntheticGap()
    missing = range(0, len(LINES), gap.missing_every) if gap.missing_every else ()
    return normalised_spectra(*_label_arrays(labels), skip_lines=missing)


def observed_spectra(labels: pd.DataFrame, snr, rng, gap: SyntheticGap | None = None, bad_pixel_fraction: float = 0.02):
    """(observed flux, its error) of stars (stars x 7,514): all lines with depths scaled by
    ``gap.depth_scale``, a continuum ripple of random phase, Gaussian noise of sigma 1/SNR and a
    fraction of bad pixels set to NaN."""
    gap = gap or SyntheticGap()
    lam = aspcap_wavelength_aa()
    observed = normalised_spectra(*_label_arrays(labels), wavelength_aa=lam, depth_scale=gap.depth_scale)
    n = len(labels)
    phase = rng.uniform(0, 2 * np.pi, n)[:, None]
    observed *= (1.0 + gap.ripple_amplitude * np.sin(2 * np.pi * lam[None, :] / gap.ripple_period_aa + phase)).astype(np.float32)
    sigma = (1.0 / np.asarray(snr, float))[:, None]
    observed += (sigma * rng.standard_normal(observed.shape)).astype(np.float32)
    observed[rng.random(observed.shape) < bad_pixel_fraction] = np.nan
    return observed, np.broadcast_to(sigma, observed.shape).astype(np.float32)


def mock_spectra(labels: pd.DataFrame, snr, rng, gap: SyntheticGap | None = None, bad_pixel_fraction: float = 0.02):
    """(synthetic, observed, observed error) of the same labels: ``synthetic_spectra`` and ``observed_spectra``."""
    return (synthetic_spectra(labels, gap), *observed_spectra(labels, snr, rng, gap, bad_pixel_fraction))


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


def select_mock_stars(truth: pd.DataFrame, n_stars: int, metal_poor_fraction: float, rng, teff_range_k=(3500.0, 7000.0)):
    """Rows of the sky's APOGEE stars with good labels in the line model's Teff range; iron-poor
    stars ([M/H] < -1) make up ``metal_poor_fraction`` of them where there are enough (they are
    rare in the disc, and the transfer test of SpectraFM is about them)."""
    ok = truth["apogee_id"].astype(str).str.len().gt(0) & truth["teff"].between(*teff_range_k)
    if "labels_good" in truth:
        ok &= truth["labels_good"].astype(bool)
    idx = np.flatnonzero(ok.to_numpy())
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
        attrs={"source": "mock", "gap": vars(gap or SyntheticGap()), "bad_pixel_fraction": bad_pixel_fraction},
    )
