import sys
from pathlib import Path

from snakemake.utils import min_version, validate

min_version("9.0")

sys.path.insert(0, str(Path(workflow.basedir) / "workflow" / "scripts"))

from serving_energy.study.config_schema import check_against_schema, fill_engine_defaults

# The paper's study, unless a study is given with --configfile (its config is not merged into it).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


# --config values arrive as text: coerce them to the schema's types, the engines' options
# (their plug-ins' fragments) included; one line per problem.
check_against_schema(config, Path(workflow.basedir) / "config" / "schema.yaml")
validate(config, "config/schema.yaml")  # fills in the schema's defaults
fill_engine_defaults(config)  # and each engine's options' defaults, from its plug-in


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/measure.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/plan.smk"


rule all:
    default_target: True
    input:
        all_targets,
