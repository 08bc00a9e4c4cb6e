"""schemathesis against a running `s3dest serve`'s /openapi.json: no 5xx, responses as documented.

Every operation gets up to MAX_EXAMPLES generated requests (valid and invalid ones, with a
project's API key), checked for server errors and for responses that do not match the
schema. SQLite only; the project has a destination and a manifest, so generated requests
meet real objects too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from tests.support.builders import create_destination
from tests.support.moto_server import S3Server
from tests.support.routes import api_endpoints
from tests.support.s3dest_server import S3destEnv, S3destProcess, serve
from tests.support.samples import DESTINATION, amp_yaml

MAX_EXAMPLES = 25
DOCS_ROUTES = {"GET /openapi.json", "GET /docs", "GET /docs/oauth2-redirect", "GET /redoc"}
# Seeded: the same examples on every run (hypothesis derandomize), so a failure reproduces
# and a pass means the same thing from run to run.
DERANDOMIZE = True


@dataclass
class Api:
    server: S3destProcess
    api_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, s3_server: S3Server) -> Iterator[Api]:
    tmp = tmp_path_factory.mktemp("schemathesis")
    env = S3destEnv(
        data_dir=tmp / "data",
        extra={"S3DEST_SECRET_KEY": "", "S3DEST_MAX_REQUEST_BYTES": "1000000"},
    )
    _project_id, api_key = env.create_project("schemathesis")
    server = serve(env, tmp)
    bucket = s3_server.create_bucket()
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
        create_destination(http, s3_server, bucket, DESTINATION)
        manifest = amp_yaml("hubspotToS3", "hubspot", {"contacts": DESTINATION})
        applied = http.put(
            "/v1/manifest", content=manifest, headers={"Content-Type": "application/yaml"}
        )
        assert applied.status_code == 200, applied.text
    try:
        yield Api(server, api_key)
    finally:
        server.kill()


@pytest.fixture(scope="module")
def api_schema(api: Api) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{api.server.url}/openapi.json")


CONFORMANCE = [response_schema_conformance, status_code_conformance, content_type_conformance]


def _exercise(operation: Any, mode: GenerationMode, api: Api, checks: list[Any]) -> None:
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=DERANDOMIZE,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=api.headers, timeout=30, checks=checks)

    run()


def _has_inputs(operation: Any) -> bool:
    """Does the operation take anything a request could get wrong (parameters or a body)?"""
    return any(True for _ in operation.iter_parameters()) or bool(
        operation.get_request_payload_content_types()
    )


def _failures(schema: schemathesis.BaseSchema, api: Api, checks: list[Any]) -> dict[str, str]:
    """Operation (mode) → what schemathesis found; every operation, valid and invalid input.

    An operation it could not load or generate for is a failure too ("skipped: ..."), so
    nothing goes untested without a word. The one allowed skip: invalid input for an
    operation that takes no input at all (GET /healthz), where none can exist."""
    failures: dict[str, str] = {}
    operations = 0
    labels: set[str] = set()
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            failures[f"operation {operations}"] = f"skipped: not loadable: {result.err()}"
            continue
        operation = result.ok()
        operations += 1
        labels.add(operation.label)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            label = f"{operation.label} ({mode.value})"
            try:
                _exercise(operation, mode, api, checks)
            except Unsatisfiable as exc:
                if mode is GenerationMode.NEGATIVE and not _has_inputs(operation):
                    continue  # no invalid input exists
                failures[label] = f"skipped: no examples could be generated: {exc}"[:1500]
            except (Exception, BaseExceptionGroup) as exc:  # schemathesis' FailureGroup
                text = f"{type(exc).__name__}: {exc}"
                failures[label] = text[:1500]
    skipped = sorted(k for k, v in failures.items() if v.startswith("skipped"))
    print(f"\nschemathesis: {len(labels)} operations, skipped {skipped or 'none'}")
    # Every REST route of the app's route table was an operation here (a route the schema
    # leaves out would be one schemathesis never tries): the docs' own pages aside.
    routes = {e.label for e in api_endpoints()} - DOCS_ROUTES
    assert labels == routes, labels ^ routes
    return failures


def _show(failures: dict[str, str]) -> str:
    return "\n\n".join(f"== {k}\n{v}" for k, v in failures.items())


# schemathesis' own pytest integration (`schemathesis.pytest.from_fixture`) does not work with
# the pytest installed here (it reads `Function._nodeid`, gone in pytest 9), so the operations
# are driven through its Python API: one hypothesis run per operation and generation mode.
def test_api_never_answers_5xx_and_answers_as_documented(
    api_schema: schemathesis.BaseSchema, api: Api
) -> None:
    """No 5xx, and statuses, content types and bodies as /openapi.json documents them (the
    error shape included), for valid and invalid requests alike. One pass with every check
    on each case: the cases are the same seeded ones either way, and two passes (one per
    kind of check) cost the suite a minute."""
    failures = _failures(api_schema, api, [not_a_server_error, *CONFORMANCE])
    assert failures == {}, _show(failures)


def test_the_server_survived(api: Api) -> None:
    assert api.server.proc is not None and api.server.proc.poll() is None, api.server.log()[-3000:]
    assert httpx.get(f"{api.server.url}/healthz", timeout=10).status_code == 200
    unexpected = [line for line in api.server.log().splitlines() if "unexpected error" in line]
    assert unexpected == [], unexpected[:5]
