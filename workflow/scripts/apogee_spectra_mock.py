"""Rule apogee_spectra (mock sky): the mock's APOGEE spectra as the SpectraFM pixel store, and its line list."""

from pipeline.settings import from_dict, keywords
from pipeline.sky.apogee import SyntheticGap, line_list
from pipeline.sky.apogee_store import build_mock_store
from pipeline.spectrafm.store import split_keywords
from pipeline.workflow.tracking import rule_run

sm = snakemake  # noqa: F821
with rule_run(sm) as run:
    mock = dict(sm.params.mock)
    where = "sky.apogee_spectra"
    settings = keywords(build_mock_store, mock, where, ignore=("enabled", "gap"))
    if mock.get("gap") is not None:
        settings["gap"] = from_dict(SyntheticGap, mock["gap"], f"{where}.gap")
    build_mock_store(sm.input.truth[0], sm.input.allstar, sm.output.store, **settings, **split_keywords(sm.params.split))
    line_list().to_csv(sm.output.lines, index=False)
