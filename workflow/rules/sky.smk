# Stage 1: the mock sky (raw survey files in real formats) and its two reports.


rule sky:
    input:
        code=code_of("sky"),
    output:
        allstar=f"{SKY}/allStar.fits",
        gaia_source=f"{SKY}/gaia_source.parquet",
        xp=directory(f"{SKY}/xp_continuous"),
        dust=f"{SKY}/dust/combined19/combine19.h5",
        distmass=f"{SKY}/distmass.fits",
        truth=f"{SKY}/truth.parquet",
        manifest=f"{SKY}/manifest.json",
    log:
        f"{RESULTS}/logs/sky.log",
    benchmark:
        f"{RESULTS}/benchmarks/sky.tsv"
    conda:
        "../envs/sky.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=30,
    params:
        sky=SKY_CORE,
    script:
        "../scripts/sky.py"


rule sky_realism:
    input:
        allstar=rules.sky.output.allstar,
        gaia_source=rules.sky.output.gaia_source,
        xp=rules.sky.output.xp,
        truth=rules.sky.output.truth,
        code=code_of("sky_realism"),
    output:
        report(
            f"{RESULTS}/sky/realism.json",
            caption="../report/realism.rst",
            category="Mock sky",
        ),
    log:
        f"{RESULTS}/logs/sky_realism.log",
    benchmark:
        f"{RESULTS}/benchmarks/sky_realism.tsv"
    conda:
        "../envs/sky.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    params:
        realism=config["realism"],
    script:
        "../scripts/sky_realism.py"


rule sky_difficulty:
    input:
        allstar=rules.sky.output.allstar,
        gaia_source=rules.sky.output.gaia_source,
        xp=rules.sky.output.xp,
        truth=rules.sky.output.truth,
        code=code_of("sky_difficulty"),
    output:
        report(
            f"{RESULTS}/sky/difficulty.json",
            caption="../report/difficulty.rst",
            category="Mock sky",
        ),
    log:
        f"{RESULTS}/logs/sky_difficulty.log",
    benchmark:
        f"{RESULTS}/benchmarks/sky_difficulty.tsv"
    conda:
        "../envs/sky.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        difficulty=config["difficulty"],
    script:
        "../scripts/sky_difficulty.py"


if CATALOG_ALL_TRUTH:

    rule sky_xp_all:
        input:
            dust=rules.sky.output.dust,
            code=code_of("sky_xp_all"),
        output:
            files=[f for p in XP_ALL_FILES.values() for f in (p["xp_continuous"], *p["gaia_source"])],
            truth=f"{SKY}/xp_all/truth.parquet",
            manifest=f"{SKY}/xp_all/manifest.json",
        log:
            f"{RESULTS}/logs/sky_xp_all.log",
        benchmark:
            f"{RESULTS}/benchmarks/sky_xp_all.tsv"
        conda:
            "../envs/sky.yaml"
        threads: 1
        resources:
            mem_mb=8000,
            runtime=60,
        params:
            xp_all=config["sky"]["xp_all"],
        script:
            "../scripts/sky_xp_all.py"
