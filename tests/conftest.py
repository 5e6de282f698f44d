"""Fixtures several test folders use: the whole local stack (slow tests) and the costs world (the Azure
Monitor stand-in in process, the identity endpoint and Azurite) that the costs, alerts and reconciliation
tests share. Plain helpers are in tests/support/.
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import pytest
from azure.identity import ManagedIdentityCredential
from azure.monitor.query import LogsQueryClient
from hypothesis import HealthCheck, settings

from standins._server import free_port
from standins.arm import ArmConfig, ArmDeployment, RunningArm, start_arm
from standins.arm_metrics import MeterSource
from standins.identity import identity_env, start_identity
from standins.monitor import RunningMonitor, start_monitor
from standins.stack import AZURITE_ACCOUNT, AZURITE_KEY, Stack, running_stack
from tests import ROOT
from tests.support.arm import TEST_ACCOUNT
from tests.support.costs import CostStack
from tests.support.loop import LoopThread
from tests.support.monitor import fresh_monitor_config
from tests.support.sections import cost_section

# The fuzz tests' example counts: "ci" (the default) keeps `make test` bounded; `--hypothesis-profile long`
# searches far longer, on demand (README, Tests). No deadline: a shared 2-core machine has slow moments,
# and speed is measured by the benchmarks, not here.
settings.register_profile(
    "ci", max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.register_profile(
    "long", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("hypothesis_profile", None) is None:  # the option, when given, has loaded its own
        settings.load_profile("ci")


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The whole local stack as `make run` starts it (stand-ins as processes), on free ports.

    The timers do not fire on their schedules here: tests fire them through the admin endpoint,
    so no background run adds tokens a test is counting.
    """
    data_dir: Path = tmp_path_factory.mktemp("stack")
    with running_stack(data_dir, fixed_ports=False, with_host=True, host_schedules=False) as stack:
        yield stack


# Table storage only: what the progress and alert state stores use; Blob storage: the FOCUS export.
AZURITE_TABLE = ROOT / "node_modules" / ".bin" / "azurite-table"
AZURITE_BLOB = ROOT / "node_modules" / ".bin" / "azurite-blob"


@contextlib.contextmanager
def _azurite(service: Literal["table", "blob"]) -> Iterator[str]:
    """One Azurite service in its own process (killed by its pid), in memory; its connection string."""
    binary = AZURITE_TABLE if service == "table" else AZURITE_BLOB
    if not binary.exists():
        pytest.skip("Azurite is not installed (run `make setup`)")
    port = free_port()
    process = subprocess.Popen(
        [str(binary), "--silent", "--disableTelemetry", "--skipApiVersionCheck", "--inMemoryPersistence",
         f"--{service}Host", "127.0.0.1",
         f"--{service}Port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 30
        for line in process.stdout:
            if "successfully" in line:  # "successfully listening" or "successfully started"
                break
            if time.monotonic() > deadline:
                raise RuntimeError("Azurite did not start")
        else:
            raise RuntimeError(f"Azurite exited with {process.wait()}")
        yield (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
               f"{service.capitalize()}Endpoint=http://127.0.0.1:{port}/{AZURITE_ACCOUNT};")
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture(scope="module")
def azurite() -> Iterator[str]:
    """A Table storage connection string (Azurite)."""
    with _azurite("table") as connection_string:
        yield connection_string


@pytest.fixture(scope="module")
def azurite_blob() -> Iterator[str]:
    """A Blob storage connection string (Azurite)."""
    with _azurite("blob") as connection_string:
        yield connection_string


@pytest.fixture(scope="module")
def loop_thread() -> Iterator[LoopThread]:
    """An event loop on a thread for a module's in-process servers (identity, monitor, ACS, ...)."""
    runner = LoopThread()
    yield runner
    runner.close()


@pytest.fixture(scope="module")
def cost_identity(loop_thread: LoopThread) -> Iterator[tuple[str, dict[str, str]]]:
    """The managed-identity endpoint: its token-signing secret and the IDENTITY_* environment pointing at it."""
    secret, header = secrets.token_hex(32), secrets.token_urlsafe(16)
    server = loop_thread.run(start_identity(secret, header))
    yield secret, identity_env(server.url, header)
    loop_thread.run(server.stop())


@pytest.fixture
def app_identity(cost_identity: tuple[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch) -> str:
    """The app's managed identity for one test: the IDENTITY_* environment the Functions platform sets,
    pointing at the identity endpoint; the endpoint's token-signing secret (stand-ins check tokens with it)."""
    secret, env = cost_identity
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("IDENTITY_SERVER_THUMBPRINT", raising=False)
    return secret


@pytest.fixture
def make_cost_stack(
    loop_thread: LoopThread,
    app_identity: str,
    azurite: str,
    tmp_path: Path,
) -> Iterator[Callable[..., CostStack]]:
    """A fresh workspace (own DuckDB file) and progress scope per call; monitor limits overridable."""
    secret = app_identity
    started: list[RunningMonitor] = []

    def make(*, max_rows: int = 500_000, **settings: Any) -> CostStack:
        config = fresh_monitor_config(tmp_path, secret, db_name=f"monitor-{len(started)}.duckdb", max_rows=max_rows)
        monitor = loop_thread.run(start_monitor(config))
        started.append(monitor)
        cost_settings = cost_section(
            workspace_id=config.workspace_id,
            ingestion_endpoint=monitor.url,
            ingestion_rule_id=config.dcr_immutable_id,
            query_endpoint=monitor.url,
            state_connection_string=azurite,
            state_table_name="CostProgress" + uuid.uuid4().hex[:8],
            retry_delay_seconds=0,
            ca_bundle=monitor.ca_path,
            **settings,
        )
        query = LogsQueryClient(ManagedIdentityCredential(), endpoint=monitor.url,
                                connection_verify=str(monitor.ca_path))
        return CostStack(monitor, config, cost_settings, query)

    yield make
    for monitor in started:
        loop_thread.run(monitor.stop())


@pytest.fixture
def make_arm(
    loop_thread: LoopThread,
    app_identity: str,
    tmp_path: Path,
) -> Iterator[Callable[..., RunningArm]]:
    """The ARM stand-in (one model account) behind the identity endpoint, with the app's identity in the env;
    `meters`: the account's token meters its metrics API serves (a simulator's)."""
    secret = app_identity
    started: list[RunningArm] = []

    def make(
        deployments: list[ArmDeployment], *, page_size: int = 2, meters: MeterSource | None = None, **options: Any
    ) -> RunningArm:
        config = ArmConfig(
            tmp_path / "tls", secret, TEST_ACCOUNT, deployments, page_size=page_size, meters=meters, **options
        )
        arm = loop_thread.run(start_arm(config))
        started.append(arm)
        return arm

    yield make
    for arm in started:
        loop_thread.run(arm.stop())
