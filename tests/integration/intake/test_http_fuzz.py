"""Property-based fuzzing of the intake's published OpenAPI with schemathesis: whatever a
caller sends, the answer is never a 5xx (bad input is refused with a 4xx). About 1,000
cases over every operation and both databases (PostgreSQL refuses strings SQLite takes),
against a real uvicorn server with real keys and secrets, so the fuzzed bodies get past
authentication into the parsers."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from intake.callers import new_static_secret
from tests.plugins.intake_fixtures import IntakeUnderTest, StartIntake

# Ten operations (three without inputs: health, readiness, metrics) on two databases:
# about 1,000 cases in all.
EXAMPLES_PER_OPERATION = 75


@pytest.fixture
def fuzzed(start_intake: StartIntake) -> IntakeUnderTest:
    intake = start_intake()
    intake.add_key("lms", static_secret=new_static_secret(), canvas_accounts=("Account12345",))
    return intake


def test_no_request_makes_a_server_error(fuzzed: IntakeUnderTest) -> None:
    # schemathesis's pytest plugin reads a private pytest attribute that pytest 9 dropped;
    # its Python API gives the same strategies, one per operation, run by hypothesis here.
    schema = schemathesis.openapi.from_url(f"{fuzzed.url}/openapi.json")
    secret = fuzzed.keys["lms"].static_secret
    assert secret is not None
    headers = {**fuzzed.bearer("lms"), "X-Yfdocs-Secret": secret}
    statuses: Counter[int] = Counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def no_server_error(case: Any) -> None:
            if "key_name" in (case.path_parameters or {}):
                case.path_parameters["key_name"] = "lms"
            response = case.call(base_url=fuzzed.url, headers=headers, timeout=30)
            statuses[response.status_code] += 1
            case.validate_response(response, checks=[not_a_server_error])

        no_server_error()
    assert len(operations) == 10
    assert sum(statuses.values()) >= 400, statuses  # operations without inputs run fewer
    assert not [status for status in statuses if status >= 500], statuses
