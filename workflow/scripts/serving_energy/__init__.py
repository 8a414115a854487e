"""Measure energy, time and resource use of serving code language models with runtime engines.

The library behind the Snakemake workflow. Modules have one job each and never read Snakemake
objects or config files: the thin scripts in ``workflow/scripts`` pass plain values in.
"""

__version__ = "0.1.0"
