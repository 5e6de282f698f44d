"""Start the whole local stack: every stand-in as its own process, then (optionally) the app.

`python -m standins.stack` is what `make run` runs. It starts, in order, the managed-identity
endpoint, the Azure Monitor stand-in (HTTPS), the model simulator, the gateway executing
policy.xml, the SMTP outbox, the Communication Services Email stand-in (HTTPS, same outbox; used
when ALERT_DELIVERY=acs) and Azurite; writes `.local/stack.json` (where everything is) and
`.local/local.settings.json` (the sample settings pointed at the stack); then runs the local
Functions host. It stops every process it started on Ctrl-C, SIGTERM or after RUN_FOR seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from standins._server import free_port

ROOT = Path(__file__).resolve().parent.parent
CONFIG_FILE = ROOT / "standins" / "stack.config.json"
SETTINGS_SAMPLE = ROOT / "local.settings.sample.json"

# Fixed ports for `make run` so local.settings.sample.json points at the stack as written;
# tests ask for free ports instead so runs can overlap.
DEFAULT_PORTS = {
    "functions": 7071,
    "simulator": 7800,
    "gateway": 7801,
    "monitor": 7802,
    "identity": 7803,
    "acs_email": 7804,
    "smtp": 7825,
    "azurite_blob": 10000,
    "azurite_queue": 10001,
    "azurite_table": 10002,
}
READY_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 10.0
AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key (public, documented by Microsoft; not a secret).
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


class StackError(RuntimeError):
    """A stand-in did not come up."""


@dataclass
class Child:
    name: str
    process: subprocess.Popen[str]
    url: str = ""
    ready: threading.Event = field(default_factory=threading.Event)
    output_tail: list[str] = field(default_factory=list)


@dataclass
class Stack:
    data_dir: Path
    info: dict[str, Any]
    settings: dict[str, str]
    children: list[Child]

    @property
    def stack_file(self) -> Path:
        return self.data_dir / "stack.json"

    def stop(self) -> list[str]:
        """Stop every process; return the names of any whose process group outlived the stop."""
        stopped = list(reversed(self.children))
        for child in stopped:
            _stop_child(child)
        self.children.clear()
        return [child.name for child in stopped if _group_alive(child.process.pid)]


def _pump(child: Child, stream: IO[str], echo: bool, ready_prefix: str) -> None:
    for raw in stream:
        line = raw.rstrip("\n")
        if not child.ready.is_set() and line.startswith(ready_prefix):
            child.url = line.split(maxsplit=1)[1] if " " in line else ""
            child.ready.set()
            continue
        child.output_tail.append(line)
        del child.output_tail[:-50]
        if echo:
            print(f"[{child.name}] {line}", flush=True)


def _spawn(
    name: str, argv: list[str], *, echo: bool, env: dict[str, str] | None = None, ready_prefix: str = "READY "
) -> Child:
    process = subprocess.Popen(
        argv,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        start_new_session=True,  # its own process group, so stopping it stops its children too
    )
    child = Child(name, process)
    assert process.stdout is not None
    threading.Thread(target=_pump, args=(child, process.stdout, echo, ready_prefix), daemon=True).start()
    return child


def _wait_ready(child: Child, timeout_seconds: float = READY_TIMEOUT_SECONDS) -> None:
    deadline = time.monotonic() + timeout_seconds
    while not child.ready.wait(0.1):
        if child.process.poll() is not None or time.monotonic() > deadline:
            _stop_child(child)
            tail = "\n".join(child.output_tail[-20:])
            raise StackError(f"{child.name} did not start (exit code {child.process.returncode}):\n{tail}")


def _stop_child(child: Child) -> None:
    if child.process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.process.pid, signal.SIGTERM)
    try:
        child.process.wait(STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.process.pid, signal.SIGKILL)
        child.process.wait()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ports(fixed: bool) -> dict[str, int]:
    return dict(DEFAULT_PORTS) if fixed else {name: free_port() for name in DEFAULT_PORTS}


def _write_private(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    tmp.chmod(0o600)
    tmp.replace(path)


def azurite_connection_string(ports: dict[str, int]) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{ports['azurite_blob']}/{AZURITE_ACCOUNT};"
        f"QueueEndpoint=http://127.0.0.1:{ports['azurite_queue']}/{AZURITE_ACCOUNT};"
        f"TableEndpoint=http://127.0.0.1:{ports['azurite_table']}/{AZURITE_ACCOUNT};"
    )


def app_settings_for(info: dict[str, Any], sample: Path = SETTINGS_SAMPLE) -> dict[str, str]:
    """The sample settings, pointed at this stack (endpoints, generated key, CA, identity)."""
    values: dict[str, str] = dict(json.loads(sample.read_text(encoding="utf-8"))["Values"])
    values.update(
        {
            "GATEWAY_URL": info["gateway_url"],
            "OPENAI_API_VERSION": info["api_version"],
            "LOG_ANALYTICS_WORKSPACE_ID": info["monitor"]["workspace_id"],
            "LOG_ANALYTICS_ENDPOINT": info["monitor"]["endpoint"],
            "AZURE_CA_BUNDLE": info["monitor"]["ca_cert"],
            "AzureWebJobsStorage": info["storage"]["connection_string"],
            "COST_STATE_CONNECTION_STRING": info["storage"]["connection_string"],
            "ALERT_SMTP_HOST": info["smtp"]["host"],
            "ALERT_SMTP_PORT": str(info["smtp"]["port"]),
            "ALERT_SMTP_USERNAME": info["smtp"]["username"],
            "ALERT_SMTP_PASSWORD": info["smtp"]["password"],
            "ALERT_SMTP_STARTTLS": "true",
            # Used only when ALERT_DELIVERY=acs; the default stays smtp.
            "ALERT_ACS_ENDPOINT": info["acs_email"]["endpoint"],
            "LOGS_INGESTION_ENDPOINT": info["ingestion"]["endpoint"],
            "LOGS_INGESTION_RULE_ID": info["ingestion"]["rule_id"],
            # What the Functions platform sets for managed identity in Azure.
            "IDENTITY_ENDPOINT": info["identity"]["endpoint"],
            "IDENTITY_HEADER": info["identity"]["header"],
        }
    )
    # The sample personas name their key settings after the subscription: TRAFFIC_KEY_<NAME>.
    for name, key in info["subscriptions"].items():
        values[persona_key_setting(name)] = key
    return values


def persona_key_setting(subscription_name: str) -> str:
    return "TRAFFIC_KEY_" + subscription_name.upper().replace("-", "_")


def start_stack(
    data_dir: Path,
    *,
    fixed_ports: bool = False,
    with_host: bool = False,
    echo: bool = False,
    metrics_flush_seconds: float | None = None,
    config_file: Path = CONFIG_FILE,
    host_schedules: bool = True,
) -> Stack:
    """Start every stand-in (and the app host when asked); stop them all if any fails."""
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    config = json.loads(config_file.read_text(encoding="utf-8"))
    ports = _ports(fixed_ports)
    python = sys.executable
    tls_dir = data_dir / "tls"
    children: list[Child] = []
    stack = Stack(data_dir, {}, {}, children)
    try:
        identity_secret = secrets.token_hex(32)
        identity_header = secrets.token_hex(16)
        workspace_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"local-workspace:{data_dir}"))
        rule_id = "dcr-" + uuid.uuid5(uuid.NAMESPACE_URL, f"local-dcr:{data_dir}").hex
        ikey = str(uuid.uuid5(uuid.NAMESPACE_URL, f"local-appinsights:{data_dir}"))

        identity = _spawn(
            "identity",
            [
                python,
                "-m",
                "standins.identity",
                "--port",
                str(ports["identity"]),
                "--secret",
                identity_secret,
                "--identity-header",
                identity_header,
            ],
            echo=echo,
        )
        children.append(identity)
        monitor = _spawn(
            "monitor",
            [
                python,
                "-m",
                "standins.monitor",
                "--port",
                str(ports["monitor"]),
                "--db",
                str(data_dir / "monitor.duckdb"),
                "--tls-dir",
                str(tls_dir),
                "--workspace-id",
                workspace_id,
                "--rule-id",
                rule_id,
                "--ikey",
                ikey,
                "--identity-secret",
                identity_secret,
            ],
            echo=echo,
        )
        children.append(monitor)
        simulator = _spawn(
            "simulator",
            [
                python,
                "-m",
                "standins.simulator",
                "--config",
                str(config_file),
                "--port",
                str(ports["simulator"]),
            ],
            echo=echo,
        )
        children.append(simulator)
        for child in (identity, monitor, simulator):
            _wait_ready(child)

        subscriptions = {sub["name"]: "local-" + secrets.token_hex(16) for sub in config["subscriptions"]}
        subscriptions_file = data_dir / "subscriptions.json"
        _write_private(
            subscriptions_file,
            [{**sub, "key": subscriptions[sub["name"]]} for sub in config["subscriptions"]],
        )
        ca_cert = str(tls_dir / "ca.pem")
        gateway_argv = [
            python,
            "-m",
            "standins.gateway",
            "--config",
            str(config_file),
            "--port",
            str(ports["gateway"]),
            "--subscriptions",
            str(subscriptions_file),
            "--backend",
            f"{config['gateway']['backend_id']}={simulator.url}",
            "--appinsights-connection-string",
            f"InstrumentationKey={ikey};IngestionEndpoint={monitor.url}/",
            "--ca-cert",
            ca_cert,
        ]
        if metrics_flush_seconds is not None:
            gateway_argv += ["--metrics-flush-seconds", str(metrics_flush_seconds)]
        gateway = _spawn("gateway", gateway_argv, echo=echo)
        children.append(gateway)
        mail = _spawn(
            "mail",
            [
                python,
                "-m",
                "standins.mail",
                "--outbox",
                str(data_dir / "outbox"),
                "--port",
                str(ports["smtp"]),
                "--tls-dir",
                str(tls_dir),
                "--user",
                "alerts",
                "--password",
                "local-smtp-password",
            ],
            echo=echo,
        )
        children.append(mail)
        # The sample's sender is the one domain "linked" to the local Communication Services resource.
        sender = json.loads(SETTINGS_SAMPLE.read_text(encoding="utf-8"))["Values"]["ALERT_EMAIL_FROM"]
        acs_email = _spawn(
            "acs-email",
            [
                python, "-m", "standins.acs_email", "--port", str(ports["acs_email"]),
                "--outbox", str(data_dir / "outbox"), "--tls-dir", str(tls_dir),
                "--sender-domain", sender.rpartition("@")[2], "--identity-secret", identity_secret,
            ],
            echo=echo,
        )  # fmt: skip
        children.append(acs_email)
        azurite_bin = ROOT / "node_modules" / ".bin" / "azurite"
        if not azurite_bin.exists():
            raise StackError(f"{azurite_bin} is missing: run `make setup` (npm ci) first")
        azurite = _spawn(
            "azurite",
            [
                str(azurite_bin),
                "--silent",
                "--disableTelemetry",
                "--skipApiVersionCheck",
                "--location",
                str(data_dir / "azurite"),
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                str(ports["azurite_blob"]),
                "--queueHost",
                "127.0.0.1",
                "--queuePort",
                str(ports["azurite_queue"]),
                "--tableHost",
                "127.0.0.1",
                "--tablePort",
                str(ports["azurite_table"]),
            ],
            echo=echo,
            ready_prefix="Azurite Table service is successfully listening",
        )
        children.append(azurite)
        for child in (gateway, mail, acs_email, azurite):
            _wait_ready(child)

        stack.info = {
            "gateway_url": gateway.url,
            "subscriptions": subscriptions,
            "api_version": config["api_version"],
            "deployments": sorted(config["deployments"]),
            "simulator_url": simulator.url,
            "monitor": {
                "endpoint": monitor.url,
                "workspace_id": workspace_id,
                "ca_cert": ca_cert,
                "instrumentation_key": ikey,
                "db_path": str(data_dir / "monitor.duckdb"),
            },
            "ingestion": {"endpoint": monitor.url, "rule_id": rule_id, "streams": _streams()},
            "identity": {"endpoint": f"{identity.url}/msi/token", "header": identity_header},
            "smtp": {
                "host": "127.0.0.1",
                "port": ports["smtp"],
                "username": "alerts",
                "password": "local-smtp-password",
                "starttls": True,
            },
            "acs_email": {"endpoint": acs_email.url, "ca_cert": ca_cert},
            "outbox_dir": str(data_dir / "outbox"),
            "storage": {"connection_string": azurite_connection_string(ports)},
            "functions_url": f"http://127.0.0.1:{ports['functions']}" if with_host else None,
        }
        stack.settings = app_settings_for(stack.info)
        _write_private(data_dir / "local.settings.json", {"IsEncrypted": False, "Values": stack.settings})
        _write_private(stack.stack_file, stack.info)

        if with_host:
            host_argv = [
                python, "-m", "standins.funchost", "--app", "function_app:app",
                "--settings", str(data_dir / "local.settings.json"), "--port", str(ports["functions"]),
            ]  # fmt: skip
            if not host_schedules:
                host_argv.append("--no-schedules")
            host = _spawn("functions", host_argv, echo=echo)
            children.append(host)
            _wait_ready(host)
    except BaseException:
        stack.stop()
        raise
    return stack


def _streams() -> dict[str, str]:
    schemas = json.loads((ROOT / "shared" / "logs" / "schemas" / "log_tables.json").read_text(encoding="utf-8"))
    return {table: spec["stream"] for table, spec in schemas["custom"].items()}


@contextlib.contextmanager
def running_stack(data_dir: Path, **kwargs: Any) -> Iterator[Stack]:
    stack = start_stack(data_dir, **kwargs)
    try:
        yield stack
    finally:
        stack.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m standins.stack", description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".local")
    parser.add_argument("--no-host", action="store_true", help="start the stand-ins only (e.g. for `func start`)")
    parser.add_argument("--auto-ports", action="store_true", help="free ports instead of the fixed defaults")
    parser.add_argument(
        "--run-for",
        type=float,
        default=float(os.environ.get("RUN_FOR") or 0),
        help="stop by itself after this many seconds (0: until Ctrl-C); env RUN_FOR",
    )
    parser.add_argument("--metrics-flush-seconds", type=float, default=None)
    args = parser.parse_args(argv)

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print("starting the local stack (stand-ins bind 127.0.0.1 only)...", flush=True)
    try:
        stack = start_stack(
            args.data_dir,
            fixed_ports=not args.auto_ports,
            with_host=not args.no_host,
            echo=True,
            metrics_flush_seconds=args.metrics_flush_seconds,
        )
    except StackError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    info = stack.info
    print(
        f"stack up: gateway {info['gateway_url']}/inference, monitor {info['monitor']['endpoint']}, "
        f"SMTP {info['smtp']['host']}:{info['smtp']['port']}",
        flush=True,
    )
    print(f"  stack description: {stack.stack_file}", flush=True)
    print(f"  app settings:      {args.data_dir / 'local.settings.json'}", flush=True)
    print(f"  metrics store:     {info['monitor']['db_path']}", flush=True)
    print(
        f"  alert emails:      {info['outbox_dir']} (the sample's demo budget is $0.05/day for all traffic: "
        "the first alert lands there within about two minutes; open the .eml in a mail client)",
        flush=True,
    )
    if info["functions_url"]:
        print(
            f"  functions host:    {info['functions_url']} "
            f"(run a timer now: curl -X POST {info['functions_url']}/admin/functions/costs "
            "-H 'Content-Type: application/json' -d '{\"input\": \"\"}')",
            flush=True,
        )
    print(
        "Ctrl-C stops everything." + (f" Stopping by itself in {args.run_for:.0f}s." if args.run_for else ""),
        flush=True,
    )
    exit_code = 0
    try:
        deadline = time.monotonic() + args.run_for if args.run_for else None
        while not stop.wait(0.5):
            if deadline is not None and time.monotonic() >= deadline:
                break
            dead = [child.name for child in stack.children if child.process.poll() is not None]
            if dead:
                print(f"error: {', '.join(dead)} exited unexpectedly; stopping", file=sys.stderr, flush=True)
                exit_code = 1
                break
    finally:
        print("stopping the local stack...", flush=True)
        leftovers = stack.stop()
    if leftovers:
        print(f"error: processes of {', '.join(leftovers)} are still running", file=sys.stderr, flush=True)
        return 1
    print("stopped; no process left behind.", flush=True)
    return exit_code


if __name__ == "__main__":
    raise SystemExit(main())
