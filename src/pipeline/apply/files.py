"""Your own stars: the model's answers for the XP sources of files of one's own, by the functions the
workflow's ``predict_catalog`` partitions use (``apply.catalogue``), from ``python -m pipeline
apply`` or a notebook (``apply_files``).

The input is what the Gaia archive gives: XP continuous spectra (a file, or a folder of the bulk
files) and their gaia_source rows (a file or a folder), in any format the readers take (CSV, ECSV,
FITS, Parquet; gzipped text). Each XP file is reduced as the catalog reduces APOGEE's stars and
answered in one pass; a source without a gaia_source row is answered from its spectrum alone and
flagged (``OOD_BITS`` 16). The training catalogue's range (``domain.json``) comes with the model's
run: given, or found next to the model folder in the workflow's layout
(``<results>/catalog_all/domain.json``, else derived from ``<results>/catalog/catalog.parquet``).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pandas as pd

from ..catalog.build import CatalogConfig
from ..io.readers import InputFileError
from ..io.xp_readers import xp_partition_paths
from .catalogue import OOD_BITS, CatalogAllConfig, answer_partition, catalog_domain, check_tokens, read_partition

log = logging.getLogger(__name__)


def model_domain(model_dir, domain=None, catalog=None) -> dict:
    """The training catalogue's range for a model: ``domain`` (a domain.json), derived from
    ``catalog`` (a catalog.parquet), or found in the run the model folder belongs to."""
    if domain:
        return json.loads(Path(domain).read_text())
    results = Path(model_dir).resolve().parents[1]  # <results>/models/<name>
    if catalog is None:
        found = results / "catalog_all/domain.json"
        if found.exists():
            return json.loads(found.read_text())
        catalog = results / "catalog/catalog.parquet"
    if not Path(catalog).exists():
        raise FileNotFoundError(
            f"no training domain for {model_dir}: give --domain (the run's catalog_all/domain.json) or --catalog "
            f"(the run's catalog/catalog.parquet); looked for {results / 'catalog_all/domain.json'} and {catalog}"
        )
    return catalog_domain(catalog)


def _files(path, what: str) -> list[Path]:
    p = Path(path)
    if p.is_dir():
        return xp_partition_paths(p)  # the table files of a folder (Parquet, CSV, ECSV, gzipped or not)
    if not p.exists():
        raise FileNotFoundError(f"{path}: no such {what} file or folder")
    return [p]


def partitions(xp, gaia_source) -> list[tuple[Path, list[Path]]]:
    """(XP file, the gaia_source files to join it with) for each XP file: the files of overlapping
    HEALPix ranges when both are folders of the archive's bulk files, else every gaia_source file."""
    from ..gaia.bulk import RANGE, file_range, overlapping

    xp_files, gaia_files = _files(xp, "XP continuous"), _files(gaia_source, "gaia_source")
    if not (len(gaia_files) > 1 and all(RANGE.search(p.name) for p in (*xp_files, *gaia_files))):
        return [(f, gaia_files) for f in xp_files]
    by_name = {p.name: p for p in gaia_files}
    return [(f, overlapping(by_name, *file_range(f))) for f in xp_files]


def _eta(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 90 else f"{seconds:.0f} s"


def summary_text(table: pd.DataFrame, seconds: float) -> str:
    """One paragraph: sources read, answered, flagged by reason."""
    n = len(table)
    answered = int((table.n_inputs > 0).sum())
    flags = table.ood_flags.to_numpy()
    reasons = "; ".join(f"{int(((flags & bit) != 0).sum())} {text}" for bit, text in OOD_BITS.items() if ((flags & bit) != 0).any())
    return (
        f"{n} XP sources read, {answered} answered ({n - answered} without any usable input), "
        f"{int(table.ood.sum())} flagged out of the training domain"
        + (f" ({reasons})" if reasons else "")
        + f"; {n / max(seconds, 1e-9):.0f} sources/s."
    )


def apply_files(
    model_dir,
    xp,
    gaia_source,
    dust_dir=None,
    settings: CatalogAllConfig | None = None,
    catalog_cfg: CatalogConfig | None = None,
    domain=None,
    catalog=None,
    n_workers: int = 1,
) -> pd.DataFrame:
    """The model's answers for every XP source of ``xp`` (a file or folder), joined to
    ``gaia_source`` (a file or folder): one row per source, as the workflow's catalog_all writes."""
    from ..model.api import StellarModel

    settings = settings or CatalogAllConfig()
    catalog_cfg = catalog_cfg or CatalogConfig()
    dom = model_domain(model_dir, domain, catalog)
    model = StellarModel.load(model_dir, device=None if settings.device == "auto" else settings.device, precision=settings.precision)
    check_tokens(model, settings, model_dir)  # before any file is read
    if dust_dir is None:
        log.warning("no dust map (--dust-dir): ln E(B-V) is not among the inputs; the answers rest on the spectra, colours and parallaxes")
    parts = partitions(xp, gaia_source)
    t0, done, tables = time.perf_counter(), 0, []
    for i, (xp_file, gaia_files) in enumerate(parts, 1):
        gaia, coeffs = read_partition(gaia_files, xp_file, check_range=False)
        tables.append(answer_partition(gaia, coeffs, model, dom, dust_dir, settings, catalog_cfg, n_workers))
        done += len(gaia)
        rate = done / max(time.perf_counter() - t0, 1e-9)
        left = (len(parts) - i) * (time.perf_counter() - t0) / i
        log.info("apply: %d/%d files, %d sources, %.0f sources/s, ETA %s (%s)", i, len(parts), done, rate, _eta(left), Path(xp_file).name)
    table = pd.concat(tables, ignore_index=True)
    dup = table.source_id.duplicated()
    if dup.any():
        raise InputFileError(
            f"{xp}: {int(dup.sum())} source_id(s) appear in more than one XP file (e.g. {table.source_id[dup].head(3).tolist()})"
        )
    log.info("apply: %s", summary_text(table, time.perf_counter() - t0))
    return table
