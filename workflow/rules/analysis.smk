rule merge_runs:
    input:
        unpack(carbon_inputs),
        runs=selected_runs(),
        checks=selected_checks(),
    output:
        parquet="results/metrics/runs.parquet",
        csv=report(
            "results/metrics/runs.csv",
            caption="../report/runs.rst",
            category="Metrics",
            labels={"table": "all runs"},
        ),
        failed=report(
            "results/metrics/failed_runs.csv",
            caption="../report/failed_runs.rst",
            category="Metrics",
            labels={"table": "failed attempts"},
        ),
        checks=report(
            "results/metrics/equivalence.csv",
            caption="../report/equivalence.rst",
            category="Metrics",
            labels={"table": "engine equivalence"},
        ),
        superseded=report(
            "results/metrics/superseded_runs.csv",
            caption="../report/superseded_runs.rst",
            category="Metrics",
            labels={"table": "superseded runs"},
        ),
    log:
        "results/logs/merge_runs.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        # Every run of the study that exists is merged: a subset invocation (targets) adds its
        # runs to the study's tables instead of replacing them.
        other_runs=other_existing_runs(),
        other_checks=other_existing_checks(),
        models=model_descriptions(),
        validity=config["validity"],
        carbon=config["carbon"],
    script:
        "../scripts/merge_runs.py"


rule excluded_runs:
    input:
        "results/metrics/runs.parquet",
    output:
        report(
            "results/metrics/excluded_runs.csv",
            caption="../report/excluded_runs.rst",
            category="Metrics",
            labels={"table": "runs left out of the analysis"},
        ),
    log:
        "results/logs/excluded_runs.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        selection=analysis_selection(),
    script:
        "../scripts/excluded_runs.py"


rule statistical_tests:
    input:
        "results/metrics/runs.parquet",
    output:
        tests=report(
            "results/stats/tests.csv",
            caption="../report/tests.rst",
            category="Statistics",
            labels={"table": "tests"},
        ),
        posthoc=report(
            "results/stats/posthoc.csv",
            caption="../report/posthoc.rst",
            category="Statistics",
            labels={"table": "post-hoc pairs"},
        ),
        tests_tex="results/stats/tests.tex",
        posthoc_tex="results/stats/posthoc.tex",
    log:
        "results/logs/statistical_tests.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        alpha=config["analysis"]["alpha"],
        selection=analysis_selection(),
    script:
        "../scripts/statistical_tests.py"


rule paper_tables:
    input:
        "results/metrics/runs.parquet",
    output:
        table4=report(
            "results/tables/table4_cpu.csv",
            caption="../report/table4.rst",
            category="Tables",
            labels={"table": "Table 4 (CPU)"},
        ),
        table4_tex="results/tables/table4_cpu.tex",
        table5=report(
            "results/tables/table5_cuda.csv",
            caption="../report/table5.rst",
            category="Tables",
            labels={"table": "Table 5 (CUDA)"},
        ),
        table5_tex="results/tables/table5_cuda.tex",
        savings=report(
            "results/tables/savings.csv",
            caption="../report/savings.rst",
            category="Tables",
            labels={"table": "savings"},
        ),
        savings_text="results/tables/savings.md",
    log:
        "results/logs/paper_tables.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        selection=analysis_selection(),
    script:
        "../scripts/paper_tables.py"


rule figures:
    input:
        "results/metrics/runs.parquet",
    output:
        report(
            directory("results/figures/study"),
            patterns=["{name}.png"],
            caption="../report/figures.rst",
            category="Figures",
        ),
    log:
        "results/logs/figures.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        selection=analysis_selection(),
    script:
        "../scripts/figures.py"


rule timeline_figure:
    input:
        timeline=LAYOUT.run_pattern("timeline.parquet"),
        run=LAYOUT.run_pattern("run.json"),
    output:
        png=report(
            "results/figures/timelines/{model}_{engine}-{provider}_rep{rep}.png",
            caption="../report/timeline.rst",
            category="Figures",
            subcategory="Timelines",
        ),
        svg="results/figures/timelines/{model}_{engine}-{provider}_rep{rep}.svg",
    log:
        "results/logs/timeline_figure/{model}_{engine}-{provider}_rep{rep}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/timeline_figure.py"


rule replication_package:
    input:
        analysis_outputs(),
        runs="results/metrics/runs.parquet",
        failed="results/metrics/failed_runs.csv",
        equivalence="results/metrics/equivalence.csv",
        excluded="results/metrics/excluded_runs.csv",
    output:
        readme="results/README.md",
        checksums="results/SHA256SUMS",
        archive="results/replication-package.zip",
    log:
        "results/logs/replication_package.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        summary=study_summary(),
        config=config,
        command=workflow_command(),
        planned_runs=[key.to_dict() for key in STUDY_RUNS],
    script:
        "../scripts/replication_package.py"
