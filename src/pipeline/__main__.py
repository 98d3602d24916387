"""Command line: ``python -m pipeline <command>``.

    python -m pipeline predict --model results/models/small --input stars.csv \\
        --request teff logg m_h --output predictions.csv
    python -m pipeline search --model results/search --query teff=4700 logg=2.5 --top 100
    python -m pipeline import-lb23 model_torch/ results/models/published   # Leung & Bovy's format -> ours
    python -m pipeline export-lb23 results/models/small/ small_lb23/       # ours -> theirs
    python -m pipeline claims --results results --record docs/recorded --readme README.md --doc docs/findings.md  # the findings
    python -m pipeline apply --model results/models/small --xp my_xp.csv --gaia-source my_gaia.csv \
        --dust-dir dust/ --output my_stars.parquet                        # your own Gaia stars, from the archive's files
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def _read(path):
    """The stars to answer for: CSV, ECSV, FITS or Parquet (io.readers, which names the file when
    it is empty, truncated or of another format)."""
    from .io.readers import read_table

    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such file (--input)")
    return read_table(path)


OUTPUT_FORMATS = (".csv", ".parquet")


def _output_path(path):
    """``--output`` checked before any work: a format we write (.csv or .parquet) in a folder that exists."""
    if path is None:
        return None
    p = Path(path)
    if p.suffix.lower() not in OUTPUT_FORMATS:
        raise ValueError(f"--output {path}: unknown table format {p.suffix or '(none)'!r}; use one of {', '.join(OUTPUT_FORMATS)}")
    if not p.parent.is_dir():
        raise FileNotFoundError(f"--output {path}: the folder {p.parent} does not exist")
    return p


def _write(df, path):
    """The table at ``path`` (CSV without an index column, or Parquet), written atomically."""
    from .io.atomic import atomic_path

    with atomic_path(path) as tmp:
        if Path(path).suffix.lower() == ".parquet":
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, index=False)


ID_COLUMNS = ("source_id", "apogee_id", "designation", "name", "id")  # an input's identifier columns, carried to the output


def predict(args):
    import pandas as pd

    from .model.api import StellarModel

    _output_path(args.output)
    model = StellarModel.load(args.model, device=args.device)
    table = _read(args.input)
    keep = [c for c in table.columns if c in model.token_index or (c.endswith("_err") and c[:-4] in model.token_index)]
    ignored = [c for c in table.columns if c not in keep]
    if not keep:
        raise ValueError(
            f"{args.input}: none of its columns {list(table.columns)[:10]} is a token of the model "
            f"(e.g. {list(model.token_index)[:5]}, with <token>_err beside them)"
        )
    from .io.readers import numeric_columns

    numeric_columns(table, args.input, keep)
    ids = [c for c in table.columns if c.lower() in ID_COLUMNS]
    ignored = [c for c in ignored if c not in ids]
    if ignored and args.strict:
        raise ValueError(f"{args.input}: columns that are not tokens of the model (--strict): {ignored[:10]}")
    if ignored:
        logging.info("ignoring columns that are not tokens: %s", ignored[:10])
    out = model.predict(table[keep], args.request, batch_size=args.batch_size, n_mc=args.n_mc)
    out = pd.concat([table[ids].reset_index(drop=True), out.reset_index(drop=True)], axis=1)  # each answer beside its star's identifiers
    _write(out, args.output)
    logging.info("wrote %d predictions of %s to %s", len(out), args.request, args.output)


def _query(pairs):
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise ValueError(f"query term {pair!r} must look like token=value, e.g. teff=4700")
    return out


def search(args):
    import pandas as pd

    from .search.contrastive import StarSearch

    searcher = StarSearch.load(args.model, device=args.device)
    hits = searcher.query(_query(args.query), top=args.top)
    if args.output:
        _write(hits, args.output)
        logging.info("wrote the %d best matches to %s", len(hits), args.output)
    else:
        with pd.option_context("display.max_rows", args.top, "display.width", 160):
            print(hits.to_string(index=False, float_format=lambda v: f"{v:.4g}"))


def import_lb23(args):
    from .model.lb23 import import_lb23 as run

    meta = run(args.src, args.out)
    logging.info(
        "wrote %s: the published-format model of %s (%d parameters, %d tokens)",
        args.out,
        args.src,
        meta["n_parameters"],
        len(meta["vocabulary"]),
    )


def export_lb23(args):
    from .model.lb23 import export_lb23 as run

    run(args.src, args.out)
    logging.info("wrote %s: %s in the reference code's format (StellarPerceptron.load reads it)", args.out, args.src)


def claims(args):
    """The findings of a run (or of the recorded one): printed, recorded, written into the README's
    claims block and docs/findings.md's block, or checked against them."""
    import pandas as pd

    from .evaluate import findings as F

    recorded = Path(args.record) if args.record else None
    if args.results:
        table = F.load_findings(args.results, args.confirm)
        source = Path(args.results) / "eval/claims.csv"
    elif recorded is not None and (recorded / F.RECORDED_FINDINGS).is_file():
        table = pd.read_csv(recorded / F.RECORDED_FINDINGS, keep_default_na=False, na_values=[""])
        source = recorded / F.RECORDED_FINDINGS
    else:
        raise FileNotFoundError("give --results <a run's results folder>, or --record <a folder with a recorded findings.csv>")
    if recorded is not None and args.results:
        from .workflow.tracking import git_commit

        F.record(table, args.results, recorded, git_commit(Path(__file__).resolve().parents[2]))
        logging.info("recorded the findings of %s in %s", source, recorded / F.RECORDED_FINDINGS)
    readme, doc = F.generated_blocks(table, recorded or Path("docs/recorded"))
    blocks = [(args.readme or args.check, readme, F.README_START, F.README_END), (args.doc, doc, F.DOC_START, F.DOC_END)]
    for target, block, start, end in blocks:
        if not target:
            continue
        text = Path(target).read_text()
        if args.check:  # the file's generated block against the run: stale is an error
            if F.replace_block(text, block, start, end) != text:
                raise ValueError(
                    f"{target}: its generated block is not the one of {source} (stale or edited by hand); "
                    f"regenerate it: python -m pipeline claims --results <results> --readme README.md --doc docs/findings.md"
                )
            logging.info("%s: the generated block is %s's", target, source)
        else:
            from .io.atomic import atomic_path

            with atomic_path(target) as tmp:
                Path(tmp).write_text(F.replace_block(text, block, start, end))
            logging.info("wrote the findings of %s into %s", source, target)
    if not (args.readme or args.check or args.doc):
        print(F.markdown_table(table))


def apply(args):
    """Your own stars: reduce the archive's XP and gaia_source files as the catalog does, answer."""
    from .apply.catalogue import CatalogAllConfig
    from .apply.files import apply_files

    out = _output_path(args.output)
    given = {"extinction_samples": args.extinction_samples, "batch_size": args.batch_size, "device": args.device}
    settings = {k: v for k, v in given.items() if v is not None}  # the rest: CatalogAllConfig's defaults, as the workflow's
    if args.request:
        settings["requests"] = tuple(args.request)
    if args.inputs:
        settings["inputs"] = args.inputs[0] if len(args.inputs) == 1 else list(args.inputs)
    table = apply_files(
        args.model,
        args.xp,
        args.gaia_source,
        dust_dir=args.dust_dir,
        settings=CatalogAllConfig.from_dict(settings),
        domain=args.domain,
        catalog=args.catalog,
        n_workers=args.threads,
    )
    _write(table, out)
    logging.info("wrote %d sources to %s", len(table), out)


def export(args):
    """A model folder as others load it: --format hub (safetensors + model card) or lb23 (the reference code's)."""
    if args.format == "lb23":
        return export_lb23(args)
    from .model.hub import export_hub

    results = Path(args.results) if args.results else Path(args.src).resolve().parents[1]
    findings = None
    if (results / "eval/claims.csv").is_file():
        from .evaluate.findings import load_findings, markdown_table

        findings = markdown_table(load_findings(results)) + "\n"
    figures = [results / "eval/findings.png", results / "eval/claims.png"]  # the three-way findings' plot when it ran
    figure = next((f for f in figures if f.is_file()), None)
    out = export_hub(args.src, args.out, results=results, mock=args.mock, findings=findings, figure=figure)
    logging.info("wrote %s (config.json, model.safetensors, README.md: the model card)", out)


def config(args):
    """Every library setting with its default and comment (from the settings dataclasses)."""
    from .configuration import configuration_doc, settings_table

    print(configuration_doc() if args.markdown else settings_table(markdown=False))


def results_folder(args):
    """Print the paths.results of a configuration: the checkout's config.yaml under the --configfile
    files among the Snakemake arguments given, from the working folder -d names (``make run`` writes
    the report there)."""
    import yaml

    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--configfile", "--configfiles", nargs="+", default=[])
    ap.add_argument("-d", "--directory", default=".")
    known, _ = ap.parse_known_args(args.snakemake_args)
    results = "results"
    defaults = Path(__file__).resolve().parents[2] / "config.yaml"  # the checkout's, in an editable install
    for path in [*([defaults] if defaults.exists() else []), *known.configfile]:
        path = Path(path) if Path(path).is_absolute() or Path(path).exists() else Path(known.directory) / path
        with open(path) as f:
            block = (yaml.safe_load(f) or {}).get("paths") or {}
        results = block.get("results", results)
    print(Path(known.directory) / results if not Path(results).is_absolute() else results)


def _model_commands(sub):
    """The commands on a model folder: predict, search, import and export."""
    p = sub.add_parser("predict", help="ask a trained model for any tokens of stars given any others")
    p.add_argument("--model", required=True, help="model folder (config.json + model.pt)")
    p.add_argument("--input", required=True, help="table of stars: columns are token names (and <token>_err)")
    p.add_argument("--request", required=True, nargs="+", help="token names to predict")
    p.add_argument("--output", required=True, help="output table (.csv or .parquet)")
    p.add_argument("--batch-size", type=int, default=2048)
    p.add_argument("--n-mc", type=int, default=0, help="Monte Carlo draws over input errors (0: none)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--strict", action="store_true", help="fail on columns that are not tokens instead of ignoring them")
    p.set_defaults(func=predict)
    p = sub.add_parser("search", help="find the test-split stars whose XP spectra best match parameters and colours")
    p.add_argument("--model", default="results/search", help="search folder (search.pt, config.json, database.parquet)")
    p.add_argument(
        "--query",
        required=True,
        nargs="+",
        metavar="TOKEN=VALUE",
        help="any of the search's query tokens, e.g. teff=4700 logg=2.5, or jh=0.6",
    )
    p.add_argument("--top", type=int, default=100, help="how many stars to return")
    p.add_argument("--output", default=None, help="write the matches here (.csv or .parquet) instead of printing them")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cpu)")
    p.set_defaults(func=search)
    p = sub.add_parser("import-lb23", help="a model folder of Leung & Bovy's code (config.json + weights.pt) -> a model folder of ours")
    p.add_argument("src", help="folder with config.json (nn_config, tokenizer_config, norm_config) and weights.pt")
    p.add_argument("out", help="model folder to write (model.pt, config.json); predict, evaluate and MLflow take it")
    p.set_defaults(func=import_lb23)
    p = sub.add_parser("export-lb23", help="a model folder of ours -> the reference code's format")
    p.add_argument("src", help="model folder (config.json + model.pt)")
    p.add_argument("out", help="folder to write (config.json + weights.pt)")
    p.set_defaults(func=export_lb23)
    p = sub.add_parser("export", help="a model folder others can load: --format hub (safetensors + model card) or lb23")
    p.add_argument("--format", choices=("hub", "lb23"), default="hub")
    p.add_argument("src", help="model folder (config.json + model.pt)")
    p.add_argument("out", help="folder to write")
    p.add_argument("--results", default=None, help="the run the model belongs to, for the card's evaluation (default: two folders up)")
    p.add_argument(
        "--mock", action=argparse.BooleanOptionalAction, default=None, help="say in the card whether it was trained on the mock sky"
    )
    p.set_defaults(func=export)


def _run_commands(sub):
    """The commands on a run and on one's own files: claims, config, apply, results-folder."""
    p = sub.add_parser("claims", help="the papers' claims judged on a run (results/eval/claims.csv) as a Markdown table")
    p.add_argument("--results", default=None, help="the run's results folder (paths.results); without it, --record's findings.csv")
    p.add_argument("--readme", default=None, help="write the table into this file's claims block instead of printing it")
    p.add_argument("--doc", default=None, help="write the findings' summary into this file's block (docs/findings.md)")
    p.add_argument("--record", default=None, help="a folder (docs/recorded) to record the run's findings.csv in, or to read it from")
    p.add_argument("--confirm", default=None, help="the confirmation sky's results folder (default: <results>/confirm)")
    p.add_argument(
        "--check", default=None, metavar="FILE", help="fail (exit 2) when FILE's claims block (and --doc's) is not this run's table"
    )
    p.set_defaults(func=claims)
    p = sub.add_parser("config", help="every library setting of the configuration, with its default and what it does")
    p.add_argument("--markdown", action="store_true", help="as docs/configuration.md (Markdown tables)")
    p.set_defaults(func=config)
    p = sub.add_parser("apply", help="your own Gaia stars: XP continuous + gaia_source files (any archive format) -> answers")
    p.add_argument("--model", required=True, help="model folder (config.json + model.pt), e.g. results/models/small")
    p.add_argument(
        "--xp", required=True, help="XP continuous spectra: a file or a folder of the archive's files (CSV, ECSV, FITS, Parquet)"
    )
    p.add_argument("--gaia-source", required=True, help="their gaia_source rows: a file or a folder (any format the readers take)")
    p.add_argument("--dust-dir", default=None, help="the Combined19 map folder (mwdust's DUST_DIR); without it no ln E(B-V) input")
    p.add_argument("--request", nargs="+", default=None, help="tokens to answer (default: teff logg m_h logebv g_fakemag)")
    p.add_argument("--inputs", nargs="+", default=None, help="an input set (default xp30_gaia) or the tokens to give the model")
    p.add_argument("--output", required=True, help="output table (.csv or .parquet)")
    p.add_argument("--domain", default=None, help="the training catalogue's range (domain.json; default: found in the model's run)")
    p.add_argument("--catalog", default=None, help="or the training catalog.parquet to derive the range from")
    p.add_argument("--extinction-samples", type=int, default=None, help="parallax samples per source through the dust map (default 200)")
    p.add_argument("--batch-size", type=int, default=None, help="sources per inference batch")
    p.add_argument("--threads", type=int, default=1, help="threads of the extinction sampling")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.set_defaults(func=apply)
    p = sub.add_parser(
        "results-folder", help="print paths.results of config.yaml under the --configfile files of the Snakemake arguments given"
    )
    p.set_defaults(func=results_folder)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m pipeline", description="Stellar foundation model pipeline")
    sub = ap.add_subparsers(dest="command", required=True)
    _model_commands(sub)
    _run_commands(sub)
    ap.add_argument("--debug", action="store_true", help="on failure, show the traceback instead of one line")
    args, extra = ap.parse_known_args(argv)
    if extra and args.command != "results-folder":
        ap.error(f"unrecognized arguments: {' '.join(extra)}")
    args.snakemake_args = extra
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        args.func(args)
    except Exception as e:  # every failure is one line (and exit 2); --debug shows where it happened
        if args.debug:
            raise
        print(f"error: {_one_line(e, args)}", file=sys.stderr)
        return 2
    return 0


def _one_line(e: Exception, args) -> str:
    """The failure as one line with advice that fits it."""
    import errno

    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
        where = getattr(args, "output", None) or getattr(args, "readme", None) or e.filename
        return f"no space left on the device writing {where}: free some, or write elsewhere (--output)"
    text = (str(e).splitlines() or [""])[0]
    if isinstance(e, (ValueError, FileNotFoundError, FileExistsError)):  # our messages name the file, the column and the fix
        return text
    return f"{type(e).__name__}: {text} (--debug for the traceback)"


if __name__ == "__main__":
    sys.exit(main())
