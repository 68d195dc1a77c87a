"""schemathesis against the hub's own OpenAPI description, on a real running server with a
model published: no 5xx anywhere, and every response matches the documented schema."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hub_support import TOKEN
from hypothesis import HealthCheck, given, settings
from lingua_model_hub.process import HubProcess
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)


@pytest.fixture(scope="module")
def hub_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    store = tmp_path_factory.mktemp("schemathesis-store")
    with HubProcess(store, token=TOKEN) as hub:
        httpx.post(
            f"{hub.url}/api/v1/models",
            data={
                "meta": json.dumps(
                    {"model_id": "st", "version": "1", "kind": "vad", "engine": "onnx"}
                )
            },
            files=[("files", ("model.onnx", b"\x00" * 1000))],
            headers={"Authorization": f"Bearer {TOKEN}"},
        ).raise_for_status()
        yield schemathesis.openapi.from_url(f"{hub.url}/openapi.json")


AUTH = {"Authorization": f"Bearer {TOKEN}"}  # so writes get past the token check
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]


def test_the_hub_honours_its_openapi(hub_schema: Any) -> None:
    operations = [result.ok() for result in hub_schema.get_all_operations()]
    assert len(operations) >= 6
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def check(case: Any) -> None:
            case.call_and_validate(checks=CHECKS, timeout=30, headers=AUTH)

        check()
