rule plan:
    output:
        json="results/plan/plan.json",
        md="results/plan/plan.md",
    log:
        "results/logs/plan.log",
    conda:
        "../../envs/data.yaml"
    params:
        configurations=[(c.engine, c.provider) for c in CONFIGURATIONS],
        cluster_profile=str(Path(workflow.basedir) / "profiles" / "slurm" / "config.yaml"),
        # No inputs (a run as an input could be measured again just to plan): the plan is made
        # again whenever what it reads of the study changed.
        study_state=lambda wildcards: plan_state(),
    script:
        "../scripts/plan.py"
