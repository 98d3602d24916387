"""The mock's APOGEE H-band spectra for SpectraFM: a line list at the real features' wavelengths
(spectrafm.aspcap) plus seeded forests of weak atomic lines and of the molecular lines (OH, CN,
CO) that fill giants' H-band spectra, continuum-normalised spectra on the ASPCAP grid (a clean
synthetic one like ASPCAP's best fit and an observed one), and the mock's store of them with its
labels and truth (``sky/apogee_store.py``: which stars, their abundances and label errors).

A line's depth at line centre is a saturating function of its strength
    s = s0 10^(abund + chi_teff (5000 - Teff) / 1000 + chi_logg (logg - 2.5)),   depth = d_max s / (1 + s),
with abund = [Fe/H], [Fe/H] + [Mg/Fe], [Fe/H] + [O/Fe], [Fe/H] + 0.5 [Mg/Fe], [Fe/H] for Fe, Mg,
O (OH), Si and C (CN, CO: the mock's carbon and nitrogen follow iron), and for the Brackett lines
a strength that grows with logg (pressure broadening, the Br11 sensitivity of Campbell et al.
2022). Molecular lines carry most of a giant's Teff and logg: their strength rises steeply as
the star cools (chi_teff 0.9-1.3 dex per 1000 K: molecules dissociate in hot atmospheres), and
CO and CN grow as gravity falls (chi_logg < 0), OH as it rises. Profiles are Gaussians of the
instrument's resolution (R = 22,500) broadened by Teff. The observed spectrum differs from the
synthetic one by a systematic gap (``SyntheticGap``), Gaussian noise of 1/SNR and bad pixels (NaN).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..spectrafm.aspcap import APOGEE_FEATURES, aspcap_wavelength_aa

RESOLUTION = 22_500
C_KMS = 299_792.458
LAMBDA_RANGE_AA = (15_160.0, 16_940.0)  # where the seeded forests fall (the ASPCAP pixels' range)
# line strength parameters: (chi_teff, chi_logg) per element of the atomic lines, and each feature's base strength s0
CHI = {"Fe": (0.25, 0.05), "Mg": (0.2, 0.1), "O": (0.6, 0.1), "Si": (0.15, 0.05), "H": (-0.4, 0.0)}
# fmt: off
FEATURE_S0 = (1.2, 1.5, 1.3, 0.8, 1.0, 1.0, 1.4, 0.9, 0.9, 1.1, 1.1, 1.0, 1.3, 1.2, 1.0, 1.0, 1.2, 2.0, 2.2, 2.4,
              0.8, 0.7, 0.6, 0.7, 0.8, 0.7, 0.6, 0.9, 1.4, 1.0, 1.1, 1.2, 1.3, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
# fmt: on
# molecular forests: species -> (element whose abundance drives it, lines, s0 range, chi_teff, chi_logg)
MOLECULES = {
    "OH": ("O", 500, (0.01, 0.3), 1.3, 0.15),
    "CN": ("C", 900, (0.005, 0.12), 0.9, -0.15),
}
# CO's second-overtone (delta v = 3) bandheads in the H band (vacuum Angstrom): 3-0 ... 9-6
CO_BANDHEADS_AA = (15581.6, 15779.6, 15981.9, 16188.8, 16400.2, 16616.3, 16837.4)
CO_CHI = (1.0, -0.35)  # (chi_teff, chi_logg): CO is the H band's gravity-sensitive molecule in giants


def _weak_lines(n: int = 400, seed: int = 2024):
    """A forest of weak atomic lines (Fe, O, Si, Mg) at seeded wavelengths, one every ~4.5 Angstrom as
    in real H-band spectra. Their wavelengths are the mock's, not real ones (``line_list().real``)."""
    rng = np.random.default_rng(seed)
    elements = rng.choice(["Fe", "O", "Si", "Mg"], size=n, p=[0.45, 0.25, 0.15, 0.15])
    wavelength = np.sort(rng.uniform(*LAMBDA_RANGE_AA, n))
    s0 = 10.0 ** rng.uniform(np.log10(0.03), np.log10(0.5), n)
    return tuple((str(el), round(float(w), 2), round(float(s), 3), *CHI[el]) for el, w, s in zip(elements, wavelength, s0))


def _molecular_lines(species: str, seed: int):
    """A seeded forest of ``species``'s lines over the H band (the mock's wavelengths, log-uniform strengths)."""
    element, n, (lo, hi), chi_teff, chi_logg = MOLECULES[species]
    rng = np.random.default_rng([seed, n])
    wavelength = np.sort(rng.uniform(*LAMBDA_RANGE_AA, n))
    s0 = 10.0 ** rng.uniform(np.log10(lo), np.log10(hi), n)
    return tuple((element, round(float(w), 2), round(float(s), 4), chi_teff, chi_logg) for w, s in zip(wavelength, s0))


def co_band_lines(n_per_band: int = 40):
    """CO lines redward of each bandhead: the R branch piles up at the head, so line k lies
    0.02 k^2 Angstrom from it (0 to 31 A for k < 40) and weakens as exp(-k / 20)."""
    k = np.arange(n_per_band)
    return tuple(
        ("C", round(float(head + 0.02 * kk**2), 2), round(float(0.3 * np.exp(-kk / 20.0)), 4), *CO_CHI)
        for head in CO_BANDHEADS_AA
        for kk in k
    )


ATOMIC = tuple((el, w, s0, *CHI[el]) for (el, w), s0 in zip(APOGEE_FEATURES, FEATURE_S0))
N_STRONG = len(ATOMIC)
_FAMILIES = (
    ("atomic", ATOMIC),
    ("atomic", _weak_lines()),
    ("OH", _molecular_lines("OH", 2025)),
    ("CN", _molecular_lines("CN", 2026)),
    ("CO", co_band_lines()),
)
LINES = tuple(line for _, family in _FAMILIES for line in family)  # (element, wavelength_aa, s0, chi_teff, chi_logg)
SPECIES = tuple(name if name != "atomic" else line[0] for name, family in _FAMILIES for line in family)


def line_list() -> pd.DataFrame:
    """The mock's lines (element whose abundance drives the line, species: the atom or molecule,
    wavelength in vacuum Angstrom, strength parameters; ``real``: a known APOGEE feature, else a
    line of a seeded forest): part of the truth."""
    df = pd.DataFrame(LINES, columns=["element", "wavelength_aa", "s0", "chi_teff", "chi_logg"])
    return df.assign(species=list(SPECIES), real=np.arange(len(df)) < N_STRONG)


def line_abundance(element, fe_h, o_fe, mg_fe):
    """The abundance a line of ``element`` responds to (dex, relative to solar); Brackett lines: 0."""
    return {"Fe": fe_h, "Mg": fe_h + mg_fe, "O": fe_h + o_fe, "Si": fe_h + 0.5 * mg_fe, "C": fe_h}.get(element, 0.0 * fe_h)


def line_depth(s0, chi_teff, chi_logg, element, teff_k, logg_dex, abundance_dex, d_max: float = 0.85):
    """Depth at line centre (fraction of the continuum) of lines for stars: arrays broadcast (stars, lines)."""
    teff, logg, ab = (np.asarray(x, float) for x in (teff_k, logg_dex, abundance_dex))
    if element == "H":  # Brackett: stronger in hot stars and at high gravity (pressure broadening)
        s = s0 * 10.0 ** (chi_teff * (5000.0 - teff) / 1000.0 + 0.25 * (logg - 2.5))
    else:
        s = s0 * 10.0 ** (ab + chi_teff * (5000.0 - teff) / 1000.0 + chi_logg * (logg - 2.5))
    return d_max * s / (1.0 + s)


def line_sigma_aa(wavelength_aa, teff_k, resolution=RESOLUTION):
    """Gaussian width (Angstrom) of a line: the resolution (R = 22,500) plus thermal/turbulent broadening growing with Teff."""
    instrument = np.asarray(wavelength_aa, float) / np.asarray(resolution, float) / 2.3548
    v = 2.0 + 1.5 * (np.asarray(teff_k, float) / 5000.0)  # km/s
    return np.hypot(instrument, np.asarray(wavelength_aa, float) * v / C_KMS)


def brackett_sigma_aa(logg_dex):
    """Pressure (Stark) broadening of the Brackett lines (Angstrom): 1 A at logg 2.5, growing by
    10^0.35 per dex of gravity (about 5 A in dwarfs, 0.3 A in luminous giants): the H band's
    clearest gravity signal."""
    return 1.0 * 10.0 ** (0.35 * (np.asarray(logg_dex, float) - 2.5))


@dataclass
class SyntheticGap:
    """How observed spectra differ from the synthetic model (the "synthetic gap", after ASPCAP's):
    each ingredient is a way real spectra differ from their best-fit synthetic ones."""

    depth_scale: float = 1.05  # observed lines deeper on average (missing opacity, e.g. damping)
    log_gf_scatter_dex: float = 0.25  # each line's strength off by a seeded offset of this rms (line-list log gf errors)
    missing_every: int = 7  # every k-th line of the list is absent from the synthetic model
    ripple_amplitude: float = 0.01  # a continuum ripple of the observed spectra (normalisation residuals)
    ripple_period_aa: float = 180.0
    resolution_scatter: float = 0.05  # the observed line-spread: R = 22,500 x (1 + this x N(0, 1)) per star (fibre to fibre)
    telluric_depth: float = 0.02  # residuals of the telluric correction: lines this deep at fixed Earth-frame wavelengths
    telluric_lines: int = 100  # ... this many over TELLURIC_BANDS, shifted into the star's frame by its barycentric velocity (+-30 km/s)


# The star the line list's log gf values were calibrated on (APOGEE's astrophysical log gf: Shetrone et al.
# 2015 fit them to the Sun's and Arcturus's spectra): Arcturus, Teff 4286 K, logg 1.66, [Fe/H] -0.52
# (Ramirez & Allende Prieto 2011), solar-scaled here.
CALIBRATION_STAR = {"teff_k": 4286.0, "logg_dex": 1.66, "fe_h": -0.52}


def calibration_strength(line_index) -> np.ndarray:
    """The strength s (depth = d_max s / (1 + s)) of lines ``line_index`` of ``LINES`` in the calibration star."""
    star = CALIBRATION_STAR
    strengths = []
    for k in np.atleast_1d(line_index):
        el, _, s0, chi_teff, chi_logg = LINES[k]
        abundance = line_abundance(el, star["fe_h"], 0.0, 0.0)
        depth = line_depth(s0, chi_teff, chi_logg, el, star["teff_k"], star["logg_dex"], abundance, d_max=1.0)
        strengths.append(depth / (1.0 - depth))
    return np.array(strengths, float)


def _line_offsets_dex(gap: SyntheticGap) -> np.ndarray:
    """Each line's log-strength error of the synthetic model (seeded: the same line list for every star).
    The list's strengths were fitted to the calibration star's lines (``CALIBRATION_STAR``) to a
    precision of ``gap.log_gf_scatter_dex`` in the log strength of a weak line; a line's depth
    responds to its log strength with slope 1 / (1 + s) at strength s, so the same fit leaves a line
    saturated there an error (1 + s) times larger, which shows where the line is weak (iron-poor stars)."""
    s_cal = calibration_strength(np.arange(len(LINES)))
    return gap.log_gf_scatter_dex * (1.0 + s_cal) * np.random.default_rng(404).standard_normal(len(LINES))


def normalised_spectra(
    teff_k,
    logg_dex,
    fe_h,
    o_fe,
    mg_fe,
    wavelength_aa=None,
    depth_scale: float = 1.0,
    skip_lines=(),
    log_s_offset_dex=None,
    resolution=RESOLUTION,
    chunk: int = 256,
) -> np.ndarray:
    """Continuum-normalised flux (stars x pixels) from the line list; ``skip_lines`` (indices) left out,
    ``log_s_offset_dex`` (one per line) added to each line's log strength, ``resolution`` one per star or one for all."""
    lam = aspcap_wavelength_aa() if wavelength_aa is None else np.asarray(wavelength_aa, float)
    teff, logg, fe, o, mg = (np.atleast_1d(np.asarray(x, float)) for x in (teff_k, logg_dex, fe_h, o_fe, mg_fe))
    res = np.broadcast_to(np.asarray(resolution, float), teff.shape)
    offsets = np.zeros(len(LINES)) if log_s_offset_dex is None else np.asarray(log_s_offset_dex, float)
    out = np.empty((teff.size, lam.size), np.float32)
    skip = set(skip_lines)
    for s in range(0, teff.size, chunk):
        sl = slice(s, s + chunk)
        tau = np.zeros((teff[sl].size, lam.size))
        for k, (el, w, s0, ct, cg) in enumerate(LINES):
            if k in skip:
                continue
            d = line_depth(s0 * 10.0 ** offsets[k], ct, cg, el, teff[sl], logg[sl], line_abundance(el, fe[sl], o[sl], mg[sl]))
            d = np.minimum(depth_scale * d, 0.95)
            sig = line_sigma_aa(w, teff[sl], res[sl])[:, None]
            if el == "H":
                sig = np.hypot(sig, brackett_sigma_aa(logg[sl])[:, None])
            lo, hi = np.searchsorted(lam, [w - 6.0 * sig.max(), w + 6.0 * sig.max()])
            prof = np.exp(-0.5 * ((lam[None, lo:hi] - w) / sig) ** 2)
            tau[:, lo:hi] += -np.log1p(-d[:, None] * prof)  # lines add in optical depth, not in depth
        out[sl] = np.exp(-tau)
    return out


# The telluric bands of the H band that APOGEE's reduction models and divides out (Nidever et al. 2015
# fit CO2, CH4 and H2O): (species, first and last wavelength, vacuum Angstrom, relative depth, share of
# the lines). CO2's 30013<-00001 band near 1.575 um and its weaker (about half as deep) 30012<-00001
# band at 1.595-1.62 um (OCO-2's "weak CO2 band"), CH4's 2nu3 band around 1.666 um (1.63-1.70 um) and
# H2O's lines at the red end.
TELLURIC_BANDS = (
    ("CO2", 15_700.0, 15_820.0, 1.0, 0.3),
    ("CO2", 15_975.0, 16_200.0, 0.5, 0.3),
    ("CH4", 16_300.0, 16_940.0, 1.0, 0.2),
    ("H2O", 16_800.0, 16_940.0, 1.0, 0.2),
)


def telluric_line_list(n_lines: int, seed: int = 405) -> tuple[np.ndarray, np.ndarray]:
    """(Earth-frame wavelength in Angstrom, relative depth in (0, 1]) of ``n_lines`` seeded telluric
    lines spread over ``TELLURIC_BANDS`` by their shares, each band's depths uniform in 0.3-1 of its depth."""
    lines = np.random.default_rng(seed)
    shares = np.array([b[4] for b in TELLURIC_BANDS])
    counts = np.floor(n_lines * shares / shares.sum()).astype(int)
    counts[0] += n_lines - counts.sum()
    w0 = np.concatenate([lines.uniform(lo, hi, k) for (_, lo, hi, _, _), k in zip(TELLURIC_BANDS, counts)])
    depth = np.concatenate([d * lines.uniform(0.3, 1.0, k) for (_, _, _, d, _), k in zip(TELLURIC_BANDS, counts)])
    return w0, depth


def telluric_residuals(wavelength_aa, n_stars: int, rng, gap: SyntheticGap) -> np.ndarray:
    """Multiplicative residuals of the telluric correction (stars x pixels): ``gap.telluric_lines``
    Earth-frame lines of ``telluric_line_list`` (CO2, CH4, H2O bands), of depth up to
    ``gap.telluric_depth`` times their band's, each star's shifted by a barycentric velocity uniform
    in +-30 km/s; a residual is an over- or under-correction, so its sign is random per line and star."""
    lam = np.asarray(wavelength_aa, float)
    if not gap.telluric_lines or not gap.telluric_depth:
        return np.ones((n_stars, lam.size), np.float32)
    w0, rel_depth = telluric_line_list(gap.telluric_lines)
    depth = gap.telluric_depth * rel_depth
    v = rng.uniform(-30.0, 30.0, n_stars)
    sign = rng.choice([-1.0, 1.0], size=(n_stars, w0.size))
    out = np.ones((n_stars, lam.size))
    sig = 16_000.0 / RESOLUTION / 2.3548
    for j, w in enumerate(w0):
        centre = w * (1.0 + v / C_KMS)  # (stars,)
        lo, hi = np.searchsorted(lam, [w * (1 - 31 / C_KMS) - 6 * sig, w * (1 + 31 / C_KMS) + 6 * sig])
        out[:, lo:hi] *= 1.0 - sign[:, j : j + 1] * depth[j] * np.exp(-0.5 * ((lam[None, lo:hi] - centre[:, None]) / sig) ** 2)
    return out.astype(np.float32)


def _label_arrays(labels: pd.DataFrame):
    return [labels[c].to_numpy(float) for c in ("teff", "logg", "fe_h", "o_fe", "mg_fe")]


def synthetic_spectra(labels: pd.DataFrame, gap: SyntheticGap | None = None) -> np.ndarray:
    """The synthetic model's spectra (stars x 7,514), like ASPCAP's best fits: its line list lacks
    every ``gap.missing_every``-th line and has each line's strength off by a seeded log gf error;
    the nominal resolution; no tellurics, no continuum residuals."""
    gap = gap or SyntheticGap()
    missing = range(0, len(LINES), gap.missing_every) if gap.missing_every else ()
    return normalised_spectra(*_label_arrays(labels), skip_lines=missing, log_s_offset_dex=_line_offsets_dex(gap))


def observed_spectra(labels: pd.DataFrame, snr, rng, gap: SyntheticGap | None = None, bad_pixel_fraction: float = 0.02):
    """(observed flux, its error) of stars (stars x 7,514): every line at its true strength, depths
    scaled by ``gap.depth_scale``, each star's own line-spread (resolution), telluric residuals, a
    continuum ripple of random phase, Gaussian noise of sigma 1/SNR and a fraction of bad pixels set to NaN."""
    gap = gap or SyntheticGap()
    lam = aspcap_wavelength_aa()
    n = len(labels)
    resolution = RESOLUTION * np.clip(1.0 + gap.resolution_scatter * rng.standard_normal(n), 0.7, 1.3)
    observed = normalised_spectra(*_label_arrays(labels), wavelength_aa=lam, depth_scale=gap.depth_scale, resolution=resolution)
    observed *= telluric_residuals(lam, n, rng, gap)
    phase = rng.uniform(0, 2 * np.pi, n)[:, None]
    observed *= (1.0 + gap.ripple_amplitude * np.sin(2 * np.pi * lam[None, :] / gap.ripple_period_aa + phase)).astype(np.float32)
    sigma = (1.0 / np.asarray(snr, float))[:, None]
    observed += (sigma * rng.standard_normal(observed.shape)).astype(np.float32)
    observed[rng.random(observed.shape) < bad_pixel_fraction] = np.nan
    return observed, np.broadcast_to(sigma, observed.shape).astype(np.float32)


def mock_spectra(labels: pd.DataFrame, snr, rng, gap: SyntheticGap | None = None, bad_pixel_fraction: float = 0.02):
    """(synthetic, observed, observed error) of the same labels: ``synthetic_spectra`` and ``observed_spectra``."""
    return (synthetic_spectra(labels, gap), *observed_spectra(labels, snr, rng, gap, bad_pixel_fraction))
