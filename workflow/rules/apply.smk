# Stage 8: the model's answers for every XP source, one predict_catalog job per partition of the
# input (a cluster runs partitions as parallel jobs), a summary with its sky maps, and on the mock
# the answers judged against the truth. Figures are drawn by their own rules from the summary's
# binned tables and the evaluation's joined table: a restyle never re-reads a partition.


rule catalog_domain:
    input:
        catalog=rules.catalog.output.catalog,
        code=code_of("catalog_domain"),
    output:
        f"{RESULTS}/catalog_all/domain.json",
    log:
        f"{RESULTS}/logs/catalog_domain.log",
    benchmark:
        f"{RESULTS}/benchmarks/catalog_domain.tsv"
    conda:
        "../envs/catalog.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    script:
        "../scripts/catalog_domain.py"


rule predict_catalog:
    input:
        xp=lambda w: XP_ALL_FILES[w.partition]["xp_continuous"],
        gaia_source=lambda w: XP_ALL_FILES[w.partition]["gaia_source"],
        model=f"{RESULTS}/models/{BASE_MODEL}/model.pt",
        domain=rules.catalog_domain.output[0],
        dust=f"{DUST_DIR}/combined19/combine19.h5",
        code=code_of("predict_catalog"),
    output:
        f"{RESULTS}/catalog_all/{{partition}}.parquet",
    log:
        f"{RESULTS}/logs/predict_catalog_{{partition}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/predict_catalog_{{partition}}.tsv"
    wildcard_constraints:
        partition=r"\d{6}-\d{6}",
    conda:
        "../envs/model.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
        gpu=int(config["train"]["gpus"]),
    params:
        settings=config["catalog_all"],
        catalog=config["catalog"],
        dust_dir=lambda w, input: str(Path(input.dust).parent.parent),
    script:
        "../scripts/predict_catalog.py"


rule catalog_all_summary:
    input:
        parts=expand(f"{RESULTS}/catalog_all/{{partition}}.parquet", partition=sorted(XP_ALL_FILES)),
        code=code_of("catalog_all_summary"),
    output:
        summary=f"{RESULTS}/catalog_all/summary.json",
        tables=f"{RESULTS}/catalog_all/summary_tables.parquet",
    log:
        f"{RESULTS}/logs/catalog_all_summary.log",
    benchmark:
        f"{RESULTS}/benchmarks/catalog_all_summary.tsv"
    conda:
        "../envs/model.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    script:
        "../scripts/catalog_all_summary.py"


rule catalog_all_figure:
    input:
        metrics=rules.catalog_all_summary.output.summary,
        predictions=rules.catalog_all_summary.output.tables,
        code=code_of("figure"),
    output:
        report(
            f"{RESULTS}/catalog_all/{{figure}}.png",
            caption="../report/catalog_all.rst",
            category="Catalogue of every XP source",
        ),
    log:
        f"{RESULTS}/logs/catalog_all_figure_{{figure}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/catalog_all_figure_{{figure}}.tsv"
    wildcard_constraints:
        figure="|".join(SUMMARY_FIGURES),
    conda:
        "../envs/model.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    params:
        task="catalog_all_summary",
        dpi=figure_dpi(config["evaluate"]),
    script:
        "../scripts/figure.py"


if CATALOG_ALL_TRUTH:

    rule evaluate_catalog_all:
        input:
            parts=rules.catalog_all_summary.input.parts,
            truth=f"{SKY}/xp_all/truth.parquet",
            code=code_of("evaluate_catalog_all"),
        output:
            metrics=f"{RESULTS}/eval/catalog_all/metrics.json",
            predictions=f"{RESULTS}/eval/catalog_all/predictions.parquet",
        log:
            f"{RESULTS}/logs/evaluate_catalog_all.log",
        benchmark:
            f"{RESULTS}/benchmarks/evaluate_catalog_all.tsv"
        conda:
            "../envs/model.yaml"
        threads: 1
        resources:
            mem_mb=4000,
            runtime=30,
        script:
            "../scripts/evaluate_catalog_all.py"
