"""A one-node SLURM cluster for the tests in this folder, brought up once and always stopped."""

from __future__ import annotations

import os

import pytest

from tests.cluster.localslurm import ClusterUnavailable, LocalSlurm

# Where SLURM must work (CI as root), a cluster that cannot start fails the run instead of skipping.
REQUIRED = os.environ.get("SERVING_ENERGY_REQUIRE_SLURM") == "1"


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    cluster = LocalSlurm(tmp_path_factory.mktemp("slurm"))
    try:
        cluster.start()
    except ClusterUnavailable as error:
        if REQUIRED:
            pytest.fail(f"SERVING_ENERGY_REQUIRE_SLURM=1 but no SLURM cluster: {error}")
        pytest.skip(f"no one-node SLURM cluster here: {error}")
    try:
        yield cluster
    finally:
        cluster.stop()
