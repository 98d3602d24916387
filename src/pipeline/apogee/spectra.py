"""APOGEE-like H-band spectra: the ASPCAP pixel grid, a line list at real wavelengths, mock
continuum-normalised spectra (a clean synthetic one like ASPCAP's best fit and an observed one),
and a reader for real ``aspcapStar-dr17-*.fits`` files (SpectraFM, Koblischke & Bovy 2024).

The grid is apStar's log-linear one (log10 lambda = 4.179 + 6e-6 i, i = 0..8574, vacuum
Angstrom) without the detector gaps: the three chips' ASPCAP ranges [246, 3274), [3585, 6080),
[6344, 8335), 7,514 pixels from 15,100 to 17,000 Angstrom.

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

LOG_LAMBDA0, DLOG_LAMBDA, N_APSTAR = 4.179, 6e-6, 8575
ASPCAP_CHIPS = ((246, 3274), (3585, 6080), (6344, 8335))  # apStar pixel ranges kept by ASPCAP
RESOLUTION = 22_500
C_KMS = 299_792.458

# (element, vacuum wavelength in Angstrom, base strength s0, chi_teff, chi_logg); wavelengths of
# well-known APOGEE features (Fe I, Mg I, Si I, OH bands as "O", H Brackett series).
LINES = (
    ("Fe", 15194.49, 1.2, 0.25, 0.05), ("Fe", 15207.53, 1.5, 0.25, 0.05), ("Fe", 15294.56, 1.3, 0.25, 0.05),
    ("Fe", 15395.72, 0.8, 0.25, 0.05), ("Fe", 15490.34, 1.0, 0.25, 0.05), ("Fe", 15648.51, 1.0, 0.25, 0.05),
    ("Fe", 15662.02, 1.4, 0.25, 0.05), ("Fe", 15964.87, 0.9, 0.25, 0.05), ("Fe", 16009.61, 0.9, 0.25, 0.05),
    ("Fe", 16040.66, 1.1, 0.25, 0.05), ("Fe", 16153.25, 1.1, 0.25, 0.05), ("Fe", 16165.03, 1.0, 0.25, 0.05),
    ("Fe", 16386.30, 1.3, 0.25, 0.05), ("Fe", 16524.47, 1.2, 0.25, 0.05), ("Fe", 16530.00, 1.0, 0.25, 0.05),
    ("Fe", 16862.49, 1.0, 0.25, 0.05),
    ("Mg", 15570.00, 1.2, 0.2, 0.1), ("Mg", 15740.72, 2.0, 0.2, 0.1), ("Mg", 15748.99, 2.2, 0.2, 0.1),
    ("Mg", 15765.84, 2.4, 0.2, 0.1), ("Mg", 15959.20, 0.8, 0.2, 0.1), ("Mg", 16364.75, 0.7, 0.2, 0.1),
    ("O", 15281.05, 0.6, 0.6, 0.1), ("O", 15391.00, 0.7, 0.6, 0.1), ("O", 16372.00, 0.8, 0.6, 0.1),
    ("O", 16660.00, 0.7, 0.6, 0.1), ("O", 16910.00, 0.6, 0.6, 0.1),
    ("Si", 15376.83, 0.9, 0.15, 0.05), ("Si", 15893.00, 1.4, 0.15, 0.05), ("Si", 15964.42, 1.0, 0.15, 0.05),
    ("Si", 16060.01, 1.1, 0.15, 0.05), ("Si", 16094.79, 1.2, 0.15, 0.05), ("Si", 16680.77, 1.3, 0.15, 0.05),
    ("H", 15560.70, 0.5, -0.4, 0.0), ("H", 15704.96, 0.6, -0.4, 0.0), ("H", 15884.88, 0.7, -0.4, 0.0),
    ("H", 16113.72, 0.8, -0.4, 0.0), ("H", 16411.67, 0.9, -0.4, 0.0), ("H", 16811.11, 1.0, -0.4, 0.0),
)
ELEMENTS = ("Fe", "Mg", "O", "Si", "H")
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


def apstar_wavelength_aa(n: int = N_APSTAR) -> np.ndarray:
    """apStar's log-linear vacuum wavelength grid (Angstrom)."""
    return 10.0 ** (LOG_LAMBDA0 + DLOG_LAMBDA * np.arange(n))


def aspcap_pixels() -> np.ndarray:
    """Indices into the apStar grid of the 7,514 pixels ASPCAP keeps (the detector gaps removed)."""
    return np.concatenate([np.arange(a, b) for a, b in ASPCAP_CHIPS])


def aspcap_wavelength_aa() -> np.ndarray:
    """The 7,514 ASPCAP wavelengths (vacuum Angstrom), about 15,100-17,000."""
    return apstar_wavelength_aa()[aspcap_pixels()]


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


def normalised_spectra(teff_k, logg_dex, fe_h, o_fe, mg_fe, wavelength_aa=None, depth_scale: float = 1.0,
                       skip_lines=(), chunk: int = 256) -> np.ndarray:
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


def read_aspcapstar(path):
    """A real ``aspcapStar-dr17-*.fits``: (wavelength_aa, observed, observed_err, best_fit) on the
    7,514 ASPCAP pixels. HDU 1 is the observed normalised spectrum, HDU 2 its error, HDU 3 ASPCAP's
    best fit. Files on the full apStar grid (8,575 pixels, gaps as zeros) are cut to the chips;
    zeros and non-finite values become NaN."""
    from astropy.io import fits

    with fits.open(path) as hdul:
        if len(hdul) < 4:
            raise ValueError(f"{path}: an aspcapStar file has HDU 1 (spectrum), 2 (error), 3 (best fit); found {len(hdul)} HDUs")
        arrays = [np.asarray(hdul[k].data, float).ravel() for k in (1, 2, 3)]
        header = hdul[1].header
    n = arrays[0].size
    if any(a.size != n for a in arrays):
        raise ValueError(f"{path}: HDUs 1-3 have different lengths {[a.size for a in arrays]}")
    lam0, dlam = header.get("CRVAL1", LOG_LAMBDA0), header.get("CDELT1", DLOG_LAMBDA)
    if n == N_APSTAR:
        keep = aspcap_pixels()
        lam = 10.0 ** (lam0 + dlam * np.arange(n))[keep]
        arrays = [a[keep] for a in arrays]
    elif n == aspcap_pixels().size:
        lam = aspcap_wavelength_aa() if "CRVAL1" not in header else 10.0 ** (lam0 + dlam * np.arange(N_APSTAR))[aspcap_pixels()]
    else:
        raise ValueError(f"{path}: {n} pixels; expected 8,575 (apStar grid) or 7,514 (ASPCAP pixels)")
    flux, err, fit = (np.where(np.isfinite(a) & (a != 0), a, np.nan) for a in arrays)
    return lam, flux, err, fit
