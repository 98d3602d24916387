"""An APOGEE-like stellar population: footprint, Galactic components, Kiel diagram, mass and age.

Each star belongs to the thin disc, the thick disc or the halo; the component sets its
metallicity and age. Its evolutionary class (red-giant branch, red clump, subgiant, main
sequence, hot star) sets Teff and logg, with the giant branch's Teff depending on mass and
[M/H] as in isochrones: at fixed logg, metal-poor and massive giants are hotter. Masses of
giants follow from age and [M/H] through the main-sequence lifetime, so mass, age, Teff and
logg are mutually consistent. Distances are drawn later, once the star's luminosity is known
(``sample_distances``), from the component's density along the line of sight and the
survey's H-band magnitude limits.
"""

from __future__ import annotations

import numpy as np

from .dust import galactocentric_xyz

COMPONENTS = ("thin", "thick", "halo")
CLASSES = ("rgb", "rc", "ms", "subgiant", "hot")
# Fractions of the observed sample per class (APOGEE is ~2/3 giants).
CLASS_FRACTIONS = {"rgb": 0.46, "rc": 0.19, "ms": 0.28, "subgiant": 0.04, "hot": 0.03}
# Field types: (fraction, component probabilities thin/thick/halo, H limits and weights)
FIELD_TYPES = {
    "disc": (0.55, (0.84, 0.14, 0.02)),
    "bulge": (0.12, (0.75, 0.22, 0.03)),
    "halo": (0.33, (0.55, 0.33, 0.12)),
}
H_LIMITS = ((11.0, 0.3), (12.2, 0.6), (13.3, 0.1))
# The all-sky XP population (every Gaia source with an XP spectrum, G < 17.65, not APOGEE's targets):
# mostly dwarfs, as a magnitude-limited sample is, and fainter in H (the XP limit then cuts at G)
XP_CLASS_FRACTIONS = {"rgb": 0.20, "rc": 0.08, "ms": 0.62, "subgiant": 0.07, "hot": 0.03}
XP_H_LIMITS = ((13.0, 0.3), (14.5, 0.4), (16.0, 0.3))
FIELD_RADIUS_DEG = 1.5
BRIGHT_FRACTION = 0.004  # targets brighter than H = 7 (some too bright for Gaia XP)


def main_sequence_lifetime_gyr(mass_msun, m_h_dex):
    """t_MS ~ 10 Gyr (M/Msun)^-2.7, a little longer for metal-rich stars."""
    return 10.0 * np.asarray(mass_msun, float) ** -2.7 * (1.0 + 0.25 * np.asarray(m_h_dex, float))


def giant_mass_msun(age_gyr, m_h_dex):
    """Mass of a star leaving the main sequence at ``age_gyr``: inverse of the lifetime relation."""
    return (np.asarray(age_gyr, float) / (10.0 * (1.0 + 0.25 * np.asarray(m_h_dex, float)))) ** (-1.0 / 2.7)


def rgb_teff_k(logg_cgs, mass_msun, m_h_dex):
    """Red-giant-branch Teff: cooler up the branch, hotter for massive and metal-poor giants."""
    return 4620.0 + 290.0 * (np.asarray(logg_cgs) - 2.5) + 170.0 * np.log2(np.asarray(mass_msun) / 1.2) - 280.0 * np.asarray(m_h_dex)


def red_clump_teff_k(mass_msun, m_h_dex):
    return 4780.0 + 150.0 * np.log2(np.asarray(mass_msun) / 1.2) - 260.0 * np.asarray(m_h_dex)


def footprint(n_stars: int, rng: np.random.Generator):
    """Galactic (l, b) in APOGEE-like plates of 1.5 deg radius, and each star's field type."""
    n_fields = max(30, n_stars // 120)
    types = np.array(list(FIELD_TYPES))
    ftype = rng.choice(types, size=n_fields, p=[FIELD_TYPES[t][0] for t in types])
    l_c = np.where(ftype == "bulge", rng.normal(0, 8, n_fields), rng.uniform(0, 360, n_fields))
    # disc fields lean to the inner Galaxy as APOGEE's do
    inner = (ftype == "disc") & (rng.random(n_fields) < 0.4)
    l_c = np.where(inner, rng.uniform(-90, 90, n_fields), l_c) % 360.0
    b_disc = np.clip(rng.normal(0, 4, n_fields), -16, 16)
    b_bulge = np.clip(rng.normal(0, 5, n_fields), -12, 12)
    sin_b = rng.uniform(np.sin(np.radians(16)), 1, n_fields) * rng.choice([-1, 1], n_fields)
    b_halo = np.degrees(np.arcsin(sin_b))
    b_c = np.select([ftype == "disc", ftype == "bulge"], [b_disc, b_bulge], b_halo)
    field = rng.integers(0, n_fields, n_stars)
    # uniform within the plate (small-angle offsets on the tangent plane)
    r = FIELD_RADIUS_DEG * np.sqrt(rng.random(n_stars))
    ang = rng.uniform(0, 2 * np.pi, n_stars)
    b = np.clip(b_c[field] + r * np.sin(ang), -89.9, 89.9)
    l = (l_c[field] + r * np.cos(ang) / np.cos(np.radians(b))) % 360.0
    return l, b, field, ftype[field], l_c, b_c


def all_sky_footprint(n_stars: int, rng: np.random.Generator):
    """Galactic (l, b) over the whole sky, concentrated to the disc as Gaia's sources are (60% in a
    plane of 10 deg scale height, the rest uniform on the sphere), and each source's field type by
    position: bulge within |l| < 30, |b| < 10; disc within |b| < 15; halo beyond. The same return
    values as ``footprint``, each source its own field."""
    plane = rng.random(n_stars) < 0.6
    b = np.where(plane, np.clip(rng.laplace(0, 10, n_stars), -89.9, 89.9), np.degrees(np.arcsin(rng.uniform(-1, 1, n_stars))))
    l = rng.uniform(0, 360, n_stars)
    l_signed = (l + 180) % 360 - 180
    ftype = np.where((np.abs(l_signed) < 30) & (np.abs(b) < 10), "bulge", np.where(np.abs(b) < 15, "disc", "halo"))
    return l, b, np.arange(n_stars), ftype, l, b


def draw_population(
    n_stars: int, rng: np.random.Generator, positions=footprint, class_fractions: dict = CLASS_FRACTIONS
) -> dict[str, np.ndarray]:
    """Positions on the sky (``positions``: APOGEE's plates, or ``all_sky_footprint``) and intrinsic
    parameters (no distances yet) of ``n_stars`` stars, classes drawn with ``class_fractions``."""
    l, b, field, ftype, l_c, b_c = positions(n_stars, rng)
    comp = np.empty(n_stars, dtype="<U5")
    for t, (_, probs) in FIELD_TYPES.items():
        sel = ftype == t
        comp[sel] = rng.choice(COMPONENTS, size=sel.sum(), p=probs)
    m_h = np.select(
        [comp == "thin", comp == "thick"],
        [rng.normal(-0.05, 0.22, n_stars), rng.normal(-0.50, 0.22, n_stars)],
        rng.normal(-1.35, 0.45, n_stars),
    )
    m_h = np.clip(m_h, -2.5, 0.55)
    age = np.select(
        [comp == "thin", comp == "thick"],
        [rng.uniform(0.3, 10.0, n_stars), rng.uniform(8.5, 12.0, n_stars)],
        rng.uniform(10.5, 13.0, n_stars),
    )
    cls = rng.choice(CLASSES, size=n_stars, p=[class_fractions[c] for c in CLASSES])
    cls = np.where((comp == "halo") & (cls == "rc"), "rgb", cls)  # old metal-poor: no red clump
    teff = np.empty(n_stars)
    logg = np.empty(n_stars)
    mass = np.empty(n_stars)

    giant = np.isin(cls, ("rgb", "rc", "subgiant"))
    mass[giant] = np.clip(giant_mass_msun(age[giant], m_h[giant]) * rng.lognormal(0, 0.03, giant.sum()), 0.7, 4.5)
    # giants more massive than the age allows are clipped: recompute age from mass for consistency
    age[giant] = np.clip(main_sequence_lifetime_gyr(mass[giant], m_h[giant]) * rng.lognormal(0, 0.02, giant.sum()), 0.1, 13.5)

    rgb = cls == "rgb"
    # observed RGB: logg from ~0.8 to 3.6, more stars low on the branch
    logg[rgb] = 3.7 - 2.9 * rng.beta(2.0, 1.8, rgb.sum())
    teff[rgb] = rgb_teff_k(logg[rgb], mass[rgb], m_h[rgb]) + rng.normal(0, 45, rgb.sum())
    rc = cls == "rc"
    secondary = mass[rc] > 1.9
    logg[rc] = np.where(secondary, rng.normal(2.7, 0.08, rc.sum()), rng.normal(2.42, 0.07, rc.sum()))
    teff[rc] = red_clump_teff_k(mass[rc], m_h[rc]) + rng.normal(0, 50, rc.sum())
    sg = cls == "subgiant"
    logg[sg] = rng.uniform(3.5, 4.05, sg.sum())
    teff[sg] = 5900.0 - 1100.0 * (4.05 - logg[sg]) / 0.55 * rng.uniform(0.6, 1.0, sg.sum()) - 200 * m_h[sg]

    ms = cls == "ms"
    m_ms = np.clip(rng.lognormal(np.log(1.0), 0.33, ms.sum()), 0.35, 1.5)
    mass[ms] = m_ms
    frac_age = np.clip(age[ms] / main_sequence_lifetime_gyr(m_ms, m_h[ms]), 0, 1)
    radius = m_ms**0.85 * (1.0 + 0.35 * frac_age)
    teff[ms] = 5772.0 * m_ms**0.62 * (1.0 - 0.06 * m_h[ms]) * (1.0 - 0.04 * frac_age)
    logg[ms] = 4.438 + np.log10(m_ms) - 2.0 * np.log10(radius)
    hot = cls == "hot"
    mass[hot] = rng.uniform(1.5, 2.6, hot.sum())
    age[hot] = np.clip(main_sequence_lifetime_gyr(mass[hot], m_h[hot]) * rng.uniform(0.1, 0.9, hot.sum()), 0.05, None)
    teff[hot] = 6400.0 + 2800.0 * (mass[hot] - 1.5) / 1.1 + rng.normal(0, 150, hot.sum())
    logg[hot] = rng.uniform(3.8, 4.3, hot.sum())
    # non-giants: mass from the MS for subgiants kept as drawn (giant branch above)
    return {
        "l": l,
        "b": b,
        "field": field,
        "field_type": ftype,
        "component": comp,
        "evol_class": cls,
        "teff": teff,
        "logg": logg,
        "m_h": m_h,
        "mass": mass,
        "age": age,
        "field_l": l_c,
        "field_b": b_c,
    }


def stellar_density(component, x_kpc, y_kpc, z_kpc):
    """Unnormalised number density of a Galactic component at Galactocentric positions."""
    r = np.hypot(x_kpc, y_kpc)
    if component == "thin":
        return np.exp(-r / 2.6) * np.exp(-np.abs(z_kpc) / 0.3)
    if component == "thick":
        return np.exp(-r / 2.0) * np.exp(-np.abs(z_kpc) / 0.9)
    rs = np.sqrt(r**2 + (z_kpc / 0.7) ** 2)
    return (rs**2 + 1.0) ** -1.5


def sample_distances(pop, abs_h_mag, a_h_of_d, rng, d_grid_kpc=None, h_limits=H_LIMITS):
    """Distances (kpc) from density x volume x [H_bright < H(d) < H_lim] along each star's line of sight.

    ``a_h_of_d(rows_or_index, d_grid)`` returns the H-band extinction (stars x grid); ``h_limits``
    the survey's faint H limits and their shares (APOGEE's by default).
    """
    if d_grid_kpc is None:
        d_grid_kpc = np.geomspace(0.02, 60.0, 220)
    n = abs_h_mag.size
    h_lim_values = np.array([h for h, _ in h_limits])
    h_lim = rng.choice(h_lim_values, size=n, p=[w for _, w in h_limits])
    h_bright = np.where(rng.random(n) < BRIGHT_FRACTION, 2.0, 7.0)
    x, y, z = galactocentric_xyz(pop["l"][:, None], pop["b"][:, None], d_grid_kpc[None, :])
    rho = np.zeros((n, d_grid_kpc.size))
    for comp in COMPONENTS:
        sel = pop["component"] == comp
        rho[sel] = stellar_density(comp, x[sel], y[sel], z[sel])
    a_h = a_h_of_d(d_grid_kpc)
    h_app = abs_h_mag[:, None] + 5.0 * np.log10(d_grid_kpc[None, :] * 100.0) + a_h
    weight = rho * d_grid_kpc[None, :] ** 3 * ((h_app > h_bright[:, None]) & (h_app < h_lim[:, None]))
    # bright targets are drawn from the bright end: weight them towards their brightest allowed magnitudes
    weight[h_bright < 7.0] *= h_app[h_bright < 7.0] < 6.0
    total = weight.sum(axis=1)
    cdf = np.cumsum(weight, axis=1) / np.where(total > 0, total, 1.0)[:, None]
    u = rng.random(n)
    idx = np.clip((cdf < u[:, None]).sum(axis=1), 0, d_grid_kpc.size - 1)
    # jitter within the log-spaced bin
    dlog = np.log(d_grid_kpc[1] / d_grid_kpc[0])
    d = d_grid_kpc[idx] * np.exp(rng.uniform(-0.5, 0.5, n) * dlog)
    # a star too bright or too faint for every distance: put it at the magnitude limit
    none = total <= 0
    if none.any():
        d_lim = 10.0 ** ((h_lim[none] - 0.3 - abs_h_mag[none]) / 5.0 - 2.0)
        d[none] = np.clip(d_lim, 0.01, 60.0)
    return d, h_lim
