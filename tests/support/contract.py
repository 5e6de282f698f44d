"""Helpers for the contract tests that hold an in-memory twin and its Table storage original to the
same behaviour (tests/costs/test_progress_contract.py, tests/alerts/test_state_contract.py)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import pytest

from shared.azure_clients import open_table

if TYPE_CHECKING:
    from azure.data.tables import TableClient

IMPLEMENTATIONS = ["in-memory", "table"]  # the params of a contract test's store fixture
Store = TypeVar("Store")


def store_handles(
    request: pytest.FixtureRequest, twin: Callable[[], Store], on_table: Callable[[TableClient], Store]
) -> Callable[[], Store]:
    """A function giving another handle on one store per call (another run's client): the one twin,
    or a new client on one fresh Azurite table (the `azurite` fixture is started only then)."""
    if request.param == "in-memory":
        store = twin()
        return lambda: store
    connection_string = request.getfixturevalue("azurite")
    table_name = "Contract" + uuid.uuid4().hex[:8]
    return lambda: on_table(open_table(table_name, connection_string=connection_string, purpose="contract test"))
