"""Snakemake entry: one measured run of one model in one configuration."""

from pathlib import Path

from serving_energy.dataset import read_prompts
from serving_energy.logs import log_to
from serving_energy.protocol import RunPaths, measure_run

with log_to(snakemake.log[0]) as log:  # noqa: F821 (injected by Snakemake)
    inputs = snakemake.input  # noqa: F821
    run = measure_run(
        dict(snakemake.params.settings),  # noqa: F821
        read_prompts(Path(inputs.prompts)),
        model_dir=Path(inputs.model),
        artefact_dir=Path(inputs.artefact) if "artefact" in inputs.keys() else None,
        check_path=Path(inputs.check) if "check" in inputs.keys() else None,
        paths=RunPaths(
            out_dir=Path(snakemake.output.run).parent,  # noqa: F821
            failed_dir=Path(snakemake.params.failed_dir),  # noqa: F821
            server_log=Path(snakemake.log[0]).with_suffix(".server.log"),  # noqa: F821
        ),
        workflow_dir=Path(snakemake.scriptdir).parents[1],  # noqa: F821
    )
    metrics = run["metrics"]
    log.info(
        "run done: %d requests in %.2f s, global energy %s J (%s)",
        run["n_requests"],
        metrics.get("duration_s") or float("nan"),
        metrics.get("energy_global_j"),
        metrics.get("energy_global_method"),
    )
