"""The local stack's service table and stack.json, without starting anything (the slow tests start it)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from standins import stack_info as si
from standins.history import BillDemo
from standins.stack import (
    AZURITE_BIN,
    CONFIG_FILE,
    DEFAULT_PORTS,
    FUNCTIONS_HOST,
    SETTINGS_SAMPLE,
    STANDINS,
    Launch,
    ServiceSpec,
    standins_named,
)

URLS = {"simulator": "http://127.0.0.1:7800", "monitor": "https://127.0.0.1:7802"}


def _launch(data_dir: Path, **overrides: Any) -> Launch:
    return replace(Launch.create(data_dir, fixed_ports=True), python="python", **overrides)


def _argv(spec: ServiceSpec, launch: Launch) -> list[str]:
    return [*spec.command(launch), *spec.arguments(launch, {name: URLS[name] for name in spec.depends_on})]


def test_services_start_in_the_order_make_run_always_used() -> None:
    assert [spec.name for spec in STANDINS] == [
        "identity", "monitor", "simulator", "gateway", "mail", "acs-email", "arm", "webhook-sink", "azurite",
    ]  # fmt: skip
    names = [spec.name for spec in STANDINS]
    for spec in STANDINS:
        assert all(names.index(dependency) < names.index(spec.name) for dependency in spec.depends_on), spec.name
    assert standins_named("monitor", "identity") == STANDINS[:2]


def test_each_service_gets_the_argv_it_always_got(tmp_path: Path) -> None:
    launch = _launch(tmp_path)
    tls, ikey, secret = str(tmp_path / "tls"), launch.instrumentation_key, launch.identity_secret
    config = json.loads(CONFIG_FILE.read_text(encoding="utf-8"))
    # The sample's sender is the one domain the local Communication Services stand-in accepts.
    sender = json.loads(SETTINGS_SAMPLE.read_text(encoding="utf-8"))["Values"]["ALERT_EMAIL_FROM"]
    argv = {spec.name: _argv(spec, launch) for spec in STANDINS}
    assert argv["identity"] == ["python", "-m", "standins.identity", "--port", "7803", "--secret", secret,
                                "--identity-header", launch.identity_header]  # fmt: skip
    assert argv["monitor"] == ["python", "-m", "standins.monitor", "--port", "7802",
                               "--db", str(tmp_path / "monitor.duckdb"), "--tls-dir", tls,
                               "--workspace-id", launch.workspace_id, "--rule-id", launch.rule_id,
                               "--ikey", ikey, "--identity-secret", secret]  # fmt: skip
    # The account's meters persist in the data directory, as its metrics and bill do in Azure.
    assert argv["simulator"] == ["python", "-m", "standins.simulator", "--config", str(CONFIG_FILE), "--port", "7800",
                                 "--meters-file", str(tmp_path / "meters.json")]  # fmt: skip
    assert argv["gateway"] == ["python", "-m", "standins.gateway", "--config", str(CONFIG_FILE), "--port", "7801",
                               "--subscriptions", str(tmp_path / "subscriptions.json"),
                               "--backend", f"{config['gateway']['backend_id']}=http://127.0.0.1:7800",
                               "--appinsights-connection-string",
                               f"InstrumentationKey={ikey};IngestionEndpoint=https://127.0.0.1:7802/",
                               "--ca-cert", str(tmp_path / "tls" / "ca.pem")]  # fmt: skip
    assert argv["mail"] == ["python", "-m", "standins.mail", "--outbox", str(tmp_path / "outbox"), "--port", "7825",
                            "--tls-dir", tls, "--user", "alerts", "--password", "local-smtp-password"]  # fmt: skip
    assert argv["acs-email"] == ["python", "-m", "standins.acs_email", "--port", "7804",
                                 "--outbox", str(tmp_path / "outbox"), "--tls-dir", tls,
                                 "--sender-domain", sender.rpartition("@")[2], "--identity-secret", secret]  # fmt: skip
    # The account's token metrics are the simulator's meters.
    assert argv["arm"] == ["python", "-m", "standins.arm", "--config", str(CONFIG_FILE), "--port", "7805",
                           "--tls-dir", tls, "--identity-secret", secret,
                           "--simulator", "http://127.0.0.1:7800"]  # fmt: skip
    assert argv["webhook-sink"] == ["python", "-m", "standins.webhook_sink", "--port", "7806",
                                    "--dir", str(tmp_path / "webhooks"), "--tls-dir", tls]  # fmt: skip
    assert argv["azurite"] == [str(AZURITE_BIN), "--silent", "--disableTelemetry", "--skipApiVersionCheck",
                               "--location", str(tmp_path / "azurite"),
                               "--blobHost", "127.0.0.1", "--blobPort", "10000",
                               "--queueHost", "127.0.0.1", "--queuePort", "10001",
                               "--tableHost", "127.0.0.1", "--tablePort", "10002"]  # fmt: skip
    assert next(spec for spec in STANDINS if spec.name == "azurite").ready_prefix.startswith("Azurite Table service")
    assert _argv(FUNCTIONS_HOST, launch) == ["python", "-m", "standins.funchost", "--app", "function_app:app",
                                             "--settings", str(tmp_path / "local.settings.json"),
                                             "--port", "7071"]  # fmt: skip


def test_optional_arguments(tmp_path: Path) -> None:
    gateway = next(spec for spec in STANDINS if spec.name == "gateway")
    assert _argv(gateway, _launch(tmp_path, metrics_flush_seconds=0.5))[-2:] == ["--metrics-flush-seconds", "0.5"]
    # make run BYPASS_SHARE=0.05: the bypass demo.
    assert _argv(gateway, _launch(tmp_path, bypass_share=0.05))[-2:] == ["--bypass-share", "0.05"]
    assert _argv(FUNCTIONS_HOST, _launch(tmp_path, host_schedules=False))[-1] == "--no-schedules"
    # make run BILL_DEMO=1: the bill demo's billed price list and lag (stack.config.json "bill_demo").
    arm = next(spec for spec in STANDINS if spec.name == "arm")
    demo = BillDemo.from_stack(json.loads(CONFIG_FILE.read_text(encoding="utf-8")))
    assert _argv(arm, _launch(tmp_path, bill_demo=demo))[-4:] == [
        "--cost-price-factor", "1.15", "--cost-lag-seconds", "60",
    ]  # fmt: skip
    assert "--cost-price-factor" not in _argv(arm, _launch(tmp_path))


def test_free_ports_unless_fixed(tmp_path: Path) -> None:
    assert Launch.create(tmp_path, fixed_ports=True).ports == DEFAULT_PORTS
    assert set(Launch.create(tmp_path).ports) == set(DEFAULT_PORTS)


def test_stack_json_reads_back_into_the_same_info(tmp_path: Path) -> None:
    ca = tmp_path / "tls" / "ca.pem"
    info = si.StackInfo(
        gateway_url="http://127.0.0.1:7801",
        subscriptions={"team-a": "local-key"},
        api_version="2025-04-01-preview",
        deployments=("gpt-5.6-luna", "gpt-5.6-sol"),
        simulator_url="http://127.0.0.1:7800",
        monitor=si.MonitorInfo("https://127.0.0.1:7802", "ws", ca, "ikey", tmp_path / "monitor.duckdb"),
        ingestion=si.IngestionInfo("https://127.0.0.1:7802", "dcr-1", {"T_CL": "Custom-T_CL"}),
        identity=si.IdentityInfo("http://127.0.0.1:7803/msi/token", "header"),
        smtp=si.SmtpInfo("127.0.0.1", 7825, "alerts", "local-smtp-password", True),
        acs_email=si.AcsEmailInfo("https://127.0.0.1:7804", ca),
        arm=si.ArmInfo("https://127.0.0.1:7805", "/subscriptions/s/resourceGroups/g/providers/"
                       "Microsoft.CognitiveServices/accounts/a"),
        outbox_dir=tmp_path / "outbox",
        storage=si.StorageInfo("UseDevelopmentStorage=true"),
        functions_url=None,
    )
    document = info.to_json()
    # The file keeps the shape readers of .local/stack.json have always seen.
    assert document["monitor"]["ca_cert"] == str(ca) and document["smtp"]["port"] == 7825
    assert document["deployments"] == ["gpt-5.6-luna", "gpt-5.6-sol"] and document["functions_url"] is None
    path = tmp_path / "stack.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    assert si.StackInfo.read(path) == info
