"""Helpers for tests against a whole local stack (standins/stack.py): fire a timer through the local Functions
host's admin endpoint, ask the monitor stand-in with LogsQueryClient as the app's identity."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import pytest
from azure.identity import ManagedIdentityCredential
from azure.monitor.query import LogsQueryClient

from standins.stack import Stack


def run_timer(stack: Stack, name: str, timeout_seconds: float = 120) -> dict[str, Any]:
    """Fire a timer through the admin endpoint (as with Core Tools) and wait for that invocation."""
    base = stack.info.functions_url
    request = urllib.request.Request(
        f"{base}/admin/functions/{name}",
        data=b'{"input": ""}',
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 202
        invocation_id = response.headers["X-Invocation-Id"]
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        state = json.loads(urllib.request.urlopen(f"{base}/admin/functions/{name}/status", timeout=10).read())
        for invocation in state["invocations"]:
            if invocation["id"] == invocation_id and invocation["status"] in ("Succeeded", "Failed"):
                return dict(invocation)
        time.sleep(0.2)
    raise AssertionError(f"{name} did not finish in {timeout_seconds}s")


def flush_metrics(stack: Stack) -> None:
    """The gateway stand-in's pre-aggregated token metrics sent now (Application Insights sends them each minute)."""
    request = urllib.request.Request(
        f"{stack.info.gateway_url}/_standin/metrics/flush", data=b"{}", method="POST",
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status in (200, 202, 204)


def logs_client(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> LogsQueryClient:
    """LogsQueryClient for the stack's monitor, with the stack's managed identity (its IDENTITY_* environment)."""
    monkeypatch.setenv("IDENTITY_ENDPOINT", stack.info.identity.endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", stack.info.identity.header)
    return LogsQueryClient(
        ManagedIdentityCredential(),
        endpoint=stack.info.monitor.endpoint,
        connection_verify=str(stack.info.monitor.ca_cert),
    )
