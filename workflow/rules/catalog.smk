# Stage 2: crossmatch, quality cuts, zero point, luminosity, extinction -> one row per star.


rule catalog:
    input:
        allstar=ALLSTAR,
        gaia_source=GAIA_SOURCE,
        xp=XP_CONTINUOUS,
        dust=f"{DUST_DIR}/combined19/combine19.h5",
        code=code_of("catalog"),
    output:
        catalog=f"{RESULTS}/catalog/catalog.parquet",
        counts=f"{RESULTS}/catalog/counts.json",
    log:
        f"{RESULTS}/logs/catalog.log",
    benchmark:
        f"{RESULTS}/benchmarks/catalog.tsv"
    priority: PRIORITY["model_chain"]
    conda:
        "../envs/catalog.yaml"
    threads: 4
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        catalog=config["catalog"],
        dust_dir=lambda w, input: str(Path(input.dust).parent.parent),
    script:
        "../scripts/catalog.py"


# against the mock's truth: mock only
if MOCK:

    rule catalog_validation:
        input:
            catalog=rules.catalog.output.catalog,
            truth=f"{SKY}/truth.parquet",
            code=code_of("catalog_validation"),
        output:
            report(
                f"{RESULTS}/catalog/validation.json",
                caption="../report/validation.rst",
                category="Catalog",
            ),
        log:
            f"{RESULTS}/logs/catalog_validation.log",
        benchmark:
            f"{RESULTS}/benchmarks/catalog_validation.tsv"
        conda:
            "../envs/catalog.yaml"
        threads: 1
        resources:
            mem_mb=4000,
            runtime=10,
        params:
            validation=config["validation"],
        script:
            "../scripts/catalog_validation.py"
