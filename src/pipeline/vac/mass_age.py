"""Masses and ages of evolved stars from a DistMass-style value-added catalogue (Zhang et al. 2026).

The catalogue (APOGEE DR17 DistMass, Stone-Martinez et al. 2024, or any table with an APOGEE
identifier, a mass in Msun and an age in Gyr) is read with configurable column names, cut to
evolved stars with trustworthy values, and joined onto the catalog by APOGEE_ID. It adds the
columns ``mass``, ``mass_err`` (Msun), ``age`` and ``age_err`` (Gyr), NaN for stars without a
usable entry, which the token store turns into two more tokens.

An error may be a column or a pair of percentile columns ``[p16, p84]`` (half their distance,
as asteroseismic catalogues give it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..io.readers import MissingColumnsError, numeric_columns, read_table
from ..settings import from_dict

log = logging.getLogger(__name__)

DEFAULT_COLUMNS = {
    "apogee_id": "APOGEE_ID",
    "mass": "MASS",
    "mass_err": "MASS_ERR",
    "age": "AGE",
    "age_err": "AGE_ERR",
    "evstate": "EVSTATE",
}


@dataclass
class MassAgeCuts:
    """Quality cuts for evolved stars; ``None`` switches a cut off."""

    evstate: tuple | None = (1, 2)  # DistMass EVSTATE: 1 red-giant branch, 2 red clump
    logg_max: float | None = 3.5  # APOGEE logg of the catalog row (giants only)
    teff_max_k: float | None = 5500.0  # APOGEE Teff of the catalog row (K)
    mass_range_msun: tuple = (0.5, 4.0)  # masses kept (Msun)
    age_range_gyr: tuple = (0.1, 14.0)  # ages kept (Gyr)
    mass_rel_err_max: float | None = 0.3  # relative mass error above this: dropped
    age_rel_err_max: float | None = 0.6  # relative age error above this: dropped

    @classmethod
    def from_dict(cls, d):
        return from_dict(cls, d, "mass_age.cuts")


@dataclass
class MassAgeConfig:
    columns: dict = field(default_factory=lambda: dict(DEFAULT_COLUMNS))
    cuts: MassAgeCuts = field(default_factory=MassAgeCuts)

    @classmethod
    def from_dict(cls, d):
        return from_dict(cls, d, "mass_age")


def _error(df, spec, path, name):
    """An error column, or half the distance between two percentile columns."""
    if isinstance(spec, (list, tuple)):
        if len(spec) != 2:
            raise ValueError(f"{path}: {name} must name one error column or two percentile columns [p16, p84], not {spec}")
        return 0.5 * (df[spec[1]].to_numpy(float) - df[spec[0]].to_numpy(float))
    return df[spec].to_numpy(float)


def read_mass_age_table(path, columns: dict | None = None) -> pd.DataFrame:
    """apogee_id, mass, mass_err, age, age_err (and evstate when its column is configured) from a VAC.

    Duplicated APOGEE_IDs keep their first row (with a warning)."""
    cols = {**DEFAULT_COLUMNS, **(columns or {})}
    wanted = [cols["apogee_id"], cols["mass"], cols["age"]]
    for k in ("mass_err", "age_err"):
        wanted += list(cols[k]) if isinstance(cols[k], (list, tuple)) else [cols[k]]
    if cols.get("evstate"):
        wanted.append(cols["evstate"])
    try:
        raw = read_table(path, list(dict.fromkeys(wanted)))
    except MissingColumnsError as e:
        raise MissingColumnsError(f"{e} Name the VAC's columns in mass_age.columns of the config.") from None
    numeric_columns(raw, path, [c for c in raw.columns if c != cols["apogee_id"]])  # text in a number column is named
    ids = raw[cols["apogee_id"]]
    ids = ids.map(lambda s: s.decode() if isinstance(s, bytes) else str(s)).str.strip()
    out = pd.DataFrame(
        {
            "apogee_id": ids.to_numpy(),
            "mass": raw[cols["mass"]].to_numpy(float),
            "mass_err": _error(raw, cols["mass_err"], path, "mass_err"),
            "age": raw[cols["age"]].to_numpy(float),
            "age_err": _error(raw, cols["age_err"], path, "age_err"),
        }
    )
    if cols.get("evstate"):
        out["evstate"] = pd.to_numeric(raw[cols["evstate"]], errors="coerce").to_numpy(float)
    dup = out.apogee_id.duplicated()
    if dup.any():
        log.warning(
            "%s: %d repeated APOGEE_IDs (e.g. %s); keeping the first row of each", path, dup.sum(), out.apogee_id[dup].head(3).tolist()
        )
        out = out[~dup].reset_index(drop=True)
    return out


def evolved_star_quality(table: pd.DataFrame, cuts: MassAgeCuts) -> dict[str, np.ndarray]:
    """Named boolean masks (True = passes) of the cuts on a joined table with mass, age, their
    errors, evstate (optional) and the catalog's teff and logg. NaN fails every cut it enters."""
    m, me, a, ae = (table[c].to_numpy(float) for c in ("mass", "mass_err", "age", "age_err"))
    with np.errstate(invalid="ignore", divide="ignore"):
        masks = {
            "finite mass and age with positive errors": np.isfinite(m) & np.isfinite(a) & (me > 0) & (ae > 0),
            f"mass within {list(cuts.mass_range_msun)} Msun": (m >= cuts.mass_range_msun[0]) & (m <= cuts.mass_range_msun[1]),
            f"age within {list(cuts.age_range_gyr)} Gyr": (a >= cuts.age_range_gyr[0]) & (a <= cuts.age_range_gyr[1]),
        }
        if cuts.mass_rel_err_max is not None:
            masks[f"mass_err / mass < {cuts.mass_rel_err_max}"] = me / m < cuts.mass_rel_err_max
        if cuts.age_rel_err_max is not None:
            masks[f"age_err / age < {cuts.age_rel_err_max}"] = ae / a < cuts.age_rel_err_max
        if cuts.evstate is not None and "evstate" in table:
            masks[f"evstate in {list(cuts.evstate)}"] = np.isin(table.evstate.to_numpy(float), cuts.evstate)
        if cuts.logg_max is not None:
            masks[f"APOGEE logg < {cuts.logg_max}"] = table.logg.to_numpy(float) < cuts.logg_max
        if cuts.teff_max_k is not None:
            masks[f"APOGEE teff < {cuts.teff_max_k} K"] = table.teff.to_numpy(float) < cuts.teff_max_k
    return masks


def join_mass_age(catalog: pd.DataFrame, vac: pd.DataFrame, cuts: MassAgeCuts) -> tuple[pd.DataFrame, dict]:
    """The catalog (same rows, same order) with mass, mass_err, age, age_err; NaN where a star has no
    entry in the VAC or fails a cut. Returns (table, counts of each cut)."""
    joined = catalog[["apogee_id", "teff", "logg"]].merge(vac, on="apogee_id", how="left", validate="many_to_one")
    in_vac = joined.mass.notna().to_numpy() | joined.age.notna().to_numpy()
    counts = {"catalog stars": int(len(catalog)), "VAC rows": int(len(vac)), "catalog stars in the VAC": int(in_vac.sum())}
    keep = in_vac.copy()
    for name, mask in evolved_star_quality(joined, cuts).items():
        counts[f"failing: {name}"] = int((keep & ~mask).sum())
        keep &= mask
    counts["with mass and age tokens"] = int(keep.sum())
    for k, v in counts.items():
        log.info("mass/age %-44s %8d", k, v)
    out = catalog.copy()
    for c in ("mass", "mass_err", "age", "age_err"):
        out[c] = np.where(keep, joined[c].to_numpy(float), np.nan)
    return out, counts
