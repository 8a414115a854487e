"""Fuzz /generate and /health from the app's own OpenAPI schema: invalid input never gives a 5xx.

The fake engine never raises here, so any 5xx would be the server's own fault. Positive data may
still be refused with 422 (a schema-valid prompt can be too long for a schema-valid max_length),
so the positive-acceptance check is left out; every other built-in check runs.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from .fakes import make_app

app = make_app()
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@schema.parametrize()
@settings(max_examples=50, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_no_server_error_for_any_input(case):
    response = case.call_and_validate(excluded_checks=[positive_data_acceptance])
    # 405 for probes with other methods, 400 for bodies that are not text, 422 for bodies the
    # schema forbids; never 5xx. Every status must be documented (status_code_conformance).
    assert response.status_code < 500, response.text
