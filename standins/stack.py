"""Start the whole local stack: every stand-in as its own process, then (optionally) the app.

`python -m standins.stack` is what `make run` runs. It starts, in order, the managed-identity
endpoint, the Azure Monitor stand-in (HTTPS), the model simulator, the gateway executing
policy.xml, the SMTP outbox, the Communication Services Email stand-in (HTTPS, same outbox; used
when ALERT_DELIVERY=acs), the ARM stand-in (HTTPS; the model account's deployment list) and
Azurite; writes `.local/stack.json` (where everything is) and
`.local/local.settings.json` (the sample settings pointed at the stack); then runs the local
Functions host and the cost dashboard (tools/dashboard.py). It stops every process it started on Ctrl-C,
SIGTERM or after RUN_FOR seconds.
The services are rows of one table (STANDINS, then FUNCTIONS_HOST) that `start_services` walks.
With --bill-demo it first hands the stand-ins the previous UTC day's history (standins/history.py).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from standins._server import free_port
from standins.arm import account_of
from standins.history import BillDemo, Call, previous_day, seed_meters, seed_metrics
from standins.processes import READY_PREFIX, Child, StackError, spawn, stop_all, wait_ready
from standins.stack_info import (
    AcsEmailInfo,
    ArmInfo,
    IdentityInfo,
    IngestionInfo,
    MonitorInfo,
    SmtpInfo,
    StackInfo,
    StorageInfo,
)
from standins.webhook_sink import sink_settings

__all__ = ["Stack", "StackError", "StackInfo", "running_stack", "start_stack"]

ROOT = Path(__file__).resolve().parent.parent
CONFIG_FILE = ROOT / "standins" / "stack.config.json"
SETTINGS_SAMPLE = ROOT / "local.settings.sample.json"
AZURITE_BIN = ROOT / "node_modules" / ".bin" / "azurite"

# Fixed ports for `make run` so local.settings.sample.json points at the stack as written;
# tests ask for free ports instead so runs can overlap.
DEFAULT_PORTS = {
    "functions": 7071,
    "simulator": 7800,
    "gateway": 7801,
    "monitor": 7802,
    "identity": 7803,
    "acs_email": 7804,
    "arm": 7805,
    "webhook_sink": 7806,
    "dashboard": 7807,
    "smtp": 7825,
    "azurite_blob": 10000,
    "azurite_queue": 10001,
    "azurite_table": 10002,
}
AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key (public, documented by Microsoft; not a secret).
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
SMTP_USERNAME = "alerts"
SMTP_PASSWORD = "local-smtp-password"


@dataclass(frozen=True)
class Launch:
    """What every service's argv is built from: this start's ports, files, generated ids and secrets."""

    python: str
    data_dir: Path
    config_file: Path
    config: Mapping[str, Any]
    ports: Mapping[str, int]
    identity_secret: str
    identity_header: str
    workspace_id: str
    rule_id: str
    instrumentation_key: str
    metrics_flush_seconds: float | None
    host_schedules: bool
    bypass_share: float | None = None  # overrides the gateway's "bypass"."share" (the bypass demo)
    bill_demo: BillDemo | None = None  # stack.config.json "bill_demo" when --bill-demo (the bill demo)
    chaos_file: Path | None = None  # fault-injection control file the stand-ins watch (standins/chaos.py)

    @classmethod
    def create(
        cls,
        data_dir: Path,
        *,
        fixed_ports: bool = False,
        config_file: Path = CONFIG_FILE,
        metrics_flush_seconds: float | None = None,
        host_schedules: bool = True,
        bypass_share: float | None = None,
        bill_demo: bool = False,
        chaos_file: Path | None = None,
    ) -> Launch:
        """Ports (the fixed defaults or free ones), fresh secrets, and ids stable per data directory."""
        config = json.loads(config_file.read_text(encoding="utf-8"))
        return cls(
            python=sys.executable,
            data_dir=data_dir,
            config_file=config_file,
            config=config,
            ports=_ports(fixed_ports),
            identity_secret=secrets.token_hex(32),
            identity_header=secrets.token_hex(16),
            workspace_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"local-workspace:{data_dir}")),
            rule_id="dcr-" + uuid.uuid5(uuid.NAMESPACE_URL, f"local-dcr:{data_dir}").hex,
            instrumentation_key=str(uuid.uuid5(uuid.NAMESPACE_URL, f"local-appinsights:{data_dir}")),
            metrics_flush_seconds=metrics_flush_seconds,
            host_schedules=host_schedules,
            bypass_share=bypass_share,
            bill_demo=BillDemo.from_stack(config) if bill_demo else None,
            chaos_file=chaos_file,
        )

    @property
    def tls_dir(self) -> Path:
        return self.data_dir / "tls"

    @property
    def ca_cert(self) -> Path:
        return self.tls_dir / "ca.pem"

    @property
    def monitor_db(self) -> Path:
        return self.data_dir / "monitor.duckdb"

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    @property
    def meters_file(self) -> Path:
        """The simulator's token meters, kept across starts as the account keeps its metrics and bill."""
        return self.data_dir / "meters.json"

    @property
    def subscriptions_file(self) -> Path:
        return self.data_dir / "subscriptions.json"

    @property
    def settings_file(self) -> Path:
        return self.data_dir / "local.settings.json"


# A service's program and its arguments; the arguments also see the URLs its dependencies announced.
Command = Callable[[Launch], list[str]]
Arguments = Callable[[Launch, Mapping[str, str]], list[str]]


@dataclass(frozen=True)
class ServiceSpec:
    """One row of the service table: how to start a process and how to tell it is up."""

    name: str
    command: Command
    arguments: Arguments
    # Started once these (earlier in the table) are ready; their ready URLs are passed to `arguments`.
    depends_on: tuple[str, ...] = ()
    # The first line the service prints once it listens (Azurite announces itself in its own words).
    ready_prefix: str = READY_PREFIX
    # Environment on top of ours (every child also gets PYTHONUNBUFFERED=1 so its lines arrive as printed).
    env: Mapping[str, str] | None = None


def _module(name: str) -> Command:
    return lambda launch: [launch.python, "-m", name]


def _azurite(launch: Launch) -> list[str]:
    if not AZURITE_BIN.exists():
        raise StackError(f"{AZURITE_BIN} is missing: run `make setup` (npm ci) first")
    return [str(AZURITE_BIN)]


def _port(launch: Launch, name: str) -> str:
    return str(launch.ports[name])


def _chaos_args(launch: Launch) -> list[str]:
    return [] if launch.chaos_file is None else ["--chaos", str(launch.chaos_file)]


def _identity_args(launch: Launch, urls: Mapping[str, str]) -> list[str]:
    return ["--port", _port(launch, "identity"), "--secret", launch.identity_secret,
            "--identity-header", launch.identity_header]  # fmt: skip


def _monitor_args(launch: Launch, urls: Mapping[str, str]) -> list[str]:
    return ["--port", _port(launch, "monitor"), "--db", str(launch.monitor_db), "--tls-dir", str(launch.tls_dir),
            "--workspace-id", launch.workspace_id, "--rule-id", launch.rule_id,
            "--ikey", launch.instrumentation_key, "--identity-secret", launch.identity_secret,
            *_chaos_args(launch)]  # fmt: skip


def _simulator_args(launch: Launch, urls: Mapping[str, str]) -> list[str]:
    return ["--config", str(launch.config_file), "--port", _port(launch, "simulator"),
            "--meters-file", str(launch.meters_file)]  # fmt: skip


def _gateway_args(launch: Launch, urls: Mapping[str, str]) -> list[str]:
    args = ["--config", str(launch.config_file), "--port", _port(launch, "gateway"),
            "--subscriptions", str(launch.subscriptions_file),
            "--backend", f"{launch.config['gateway']['backend_id']}={urls['simulator']}",
            "--appinsights-connection-string",
            f"InstrumentationKey={launch.instrumentation_key};IngestionEndpoint={urls['monitor']}/",
            "--ca-cert", str(launch.ca_cert), *_chaos_args(launch)]  # fmt: skip
    if launch.metrics_flush_seconds is not None:
        args += ["--metrics-flush-seconds", str(launch.metrics_flush_seconds)]
    if launch.bypass_share is not None:
        args += ["--bypass-share", str(launch.bypass_share)]
    return args


def _mail_args(launch: Launch, urls: Mapping[str, str]) -> list[str]:
    return ["--outbox", str(launch.outbox_dir), "--port", _port(launch, "smtp"), "--tls-dir", str(launch.tls_dir),
            "--user", SMTP_USERNAME, "--password", SMTP_PASSWORD, *_chaos_args(launch)]  # fmt: skip


def _acs_email_args(launch: Launch, urls: Mapping[str, str]) -> list[str]:
    return ["--port", _port(launch, "acs_email"), "--outbox", str(launch.outbox_dir), "--tls-dir", str(launch.tls_dir),
            "--sender-domain", _sender_domain(), "--identity-secret", launch.identity_secret,
            *_chaos_args(launch)]  # fmt: skip


def _arm_args(launch: Launch, urls: Mapping[str, str]) -> list[str]:
    args = ["--config", str(launch.config_file), "--port", _port(launch, "arm"), "--tls-dir", str(launch.tls_dir),
            "--identity-secret", launch.identity_secret, "--simulator", urls["simulator"],
            *_chaos_args(launch)]  # fmt: skip
    if launch.bill_demo is not None:
        args += ["--cost-price-factor", str(launch.bill_demo.price_factor),
                 "--cost-lag-seconds", f"{launch.bill_demo.lag_seconds:g}"]  # fmt: skip
    return args


def _webhook_sink_args(launch: Launch, urls: Mapping[str, str]) -> list[str]:
    return ["--port", _port(launch, "webhook_sink"), "--dir", str(launch.data_dir / "webhooks"),
            "--tls-dir", str(launch.tls_dir)]  # fmt: skip


def _azurite_args(launch: Launch, urls: Mapping[str, str]) -> list[str]:
    return ["--silent", "--disableTelemetry", "--skipApiVersionCheck", "--location", str(launch.data_dir / "azurite"),
            "--blobHost", "127.0.0.1", "--blobPort", _port(launch, "azurite_blob"),
            "--queueHost", "127.0.0.1", "--queuePort", _port(launch, "azurite_queue"),
            "--tableHost", "127.0.0.1", "--tablePort", _port(launch, "azurite_table")]  # fmt: skip


def _host_args(launch: Launch, urls: Mapping[str, str]) -> list[str]:
    args = ["--app", "function_app:app", "--settings", str(launch.settings_file), "--port", _port(launch, "functions")]
    return args if launch.host_schedules else [*args, "--no-schedules"]


# The stand-ins in start order; stopped in reverse. A service waits only for what it names in depends_on
# (the gateway needs the simulator's and the monitor's URLs, ARM the simulator's); the rest come up side by side.
STANDINS: tuple[ServiceSpec, ...] = (
    ServiceSpec("identity", _module("standins.identity"), _identity_args),
    ServiceSpec("monitor", _module("standins.monitor"), _monitor_args),
    ServiceSpec("simulator", _module("standins.simulator"), _simulator_args),
    ServiceSpec("gateway", _module("standins.gateway"), _gateway_args, depends_on=("simulator", "monitor")),
    ServiceSpec("mail", _module("standins.mail"), _mail_args),
    ServiceSpec("acs-email", _module("standins.acs_email"), _acs_email_args),
    # The account's token metrics are the simulator's meters.
    ServiceSpec("arm", _module("standins.arm"), _arm_args, depends_on=("simulator",)),
    # Teams, Slack and webhook alert channels (the sample's finops group): .local/webhooks/.
    ServiceSpec("webhook-sink", _module("standins.webhook_sink"), _webhook_sink_args),
    ServiceSpec("azurite", _azurite, _azurite_args, ready_prefix="Azurite Table service is successfully listening"),
)


def standins_named(*names: str) -> tuple[ServiceSpec, ...]:
    """Part of the table (in table order), for tools that need only some stand-ins (e.g. the costs benchmark)."""
    unknown = set(names) - {spec.name for spec in STANDINS}
    if unknown:
        raise ValueError(f"no stand-in named {', '.join(sorted(unknown))} in standins/stack.py STANDINS")
    return tuple(spec for spec in STANDINS if spec.name in names)


# Started last, once stack.json and local.settings.json (which it reads) are written.
FUNCTIONS_HOST = ServiceSpec("functions", _module("standins.funchost"), _host_args)


def _dashboard_args(launch: Launch, urls: Mapping[str, str]) -> list[str]:
    return ["--settings", str(launch.settings_file), "--port", _port(launch, "dashboard")]


# The local cost dashboard (tools/dashboard.py: the workbook's panels on the monitor, with the app's settings);
# started with the host, once local.settings.json is written. Not an Azure stand-in: the workbook's local twin.
DASHBOARD = ServiceSpec("dashboard", _module("tools.dashboard"), _dashboard_args)


def start_services(
    specs: tuple[ServiceSpec, ...], launch: Launch, children: list[Child], *, echo: bool
) -> dict[str, Child]:
    """Start `specs` in order (each once its dependencies are ready), then wait until all are ready.

    Every started child is appended to `children` at once, so the caller can stop them all if one fails.
    """
    started: dict[str, Child] = {}
    for spec in specs:
        for dependency in spec.depends_on:
            wait_ready(started[dependency])
        urls = {name: started[name].url for name in spec.depends_on}
        argv = [*spec.command(launch), *spec.arguments(launch, urls)]
        child = spawn(spec.name, argv, cwd=ROOT, echo=echo, env=spec.env, ready_prefix=spec.ready_prefix)
        children.append(child)
        started[spec.name] = child
    for child in started.values():
        wait_ready(child)
    return started


@dataclass
class Stack:
    data_dir: Path
    info: StackInfo
    settings: dict[str, str]
    children: list[Child]

    @property
    def stack_file(self) -> Path:
        return self.data_dir / "stack.json"

    def stop(self) -> list[str]:
        """Stop every process; return the names of any whose process group outlived the stop."""
        return stop_all(self.children)


def dashboard_url(stack: Stack) -> str:
    """The local cost dashboard's URL ("" when the stack runs without it)."""
    return next((child.url for child in stack.children if child.name == DASHBOARD.name), "")


def _ports(fixed: bool) -> dict[str, int]:
    return dict(DEFAULT_PORTS) if fixed else {name: free_port() for name in DEFAULT_PORTS}


def _write_private(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    tmp.chmod(0o600)
    tmp.replace(path)


def _sample_values(sample: Path = SETTINGS_SAMPLE) -> dict[str, str]:
    values: dict[str, str] = dict(json.loads(sample.read_text(encoding="utf-8"))["Values"])
    return values


def _sender_domain() -> str:
    # The sample's sender is the one domain "linked" to the local Communication Services resource.
    return _sample_values()["ALERT_EMAIL_FROM"].rpartition("@")[2]


def azurite_connection_string(ports: Mapping[str, int]) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{ports['azurite_blob']}/{AZURITE_ACCOUNT};"
        f"QueueEndpoint=http://127.0.0.1:{ports['azurite_queue']}/{AZURITE_ACCOUNT};"
        f"TableEndpoint=http://127.0.0.1:{ports['azurite_table']}/{AZURITE_ACCOUNT};"
    )


def app_settings_for(info: StackInfo, sample: Path = SETTINGS_SAMPLE) -> dict[str, str]:
    """The sample settings, pointed at this stack (endpoints, generated key, CA, identity)."""
    values = _sample_values(sample)
    values.update(
        {
            "GATEWAY_URL": info.gateway_url,
            "OPENAI_API_VERSION": info.api_version,
            "LOG_ANALYTICS_WORKSPACE_ID": info.monitor.workspace_id,
            "LOG_ANALYTICS_ENDPOINT": info.monitor.endpoint,
            "AZURE_CA_BUNDLE": str(info.monitor.ca_cert),
            "AzureWebJobsStorage": info.storage.connection_string,
            "COST_STATE_CONNECTION_STRING": info.storage.connection_string,
            "ALERT_SMTP_HOST": info.smtp.host,
            "ALERT_SMTP_PORT": str(info.smtp.port),
            "ALERT_SMTP_USERNAME": info.smtp.username,
            "ALERT_SMTP_PASSWORD": info.smtp.password,
            "ALERT_SMTP_STARTTLS": "true",
            # Used only when ALERT_DELIVERY=acs; the default stays smtp.
            "ALERT_ACS_ENDPOINT": info.acs_email.endpoint,
            # The costs run lists the simulator's deployments from the ARM stand-in, as it would in Azure.
            "COST_MODEL_ACCOUNTS": info.arm.account_id,
            "AZURE_RESOURCE_MANAGER_ENDPOINT": info.arm.endpoint,
            "LOGS_INGESTION_ENDPOINT": info.ingestion.endpoint,
            "LOGS_INGESTION_RULE_ID": info.ingestion.rule_id,
            # What the Functions platform sets for managed identity in Azure.
            "IDENTITY_ENDPOINT": info.identity.endpoint,
            "IDENTITY_HEADER": info.identity.header,
        }
    )
    # The sample personas name their key settings after the subscription: TRAFFIC_KEY_<NAME>.
    for name, key in info.subscriptions.items():
        values[persona_key_setting(name)] = key
    return values


def persona_key_setting(subscription_name: str) -> str:
    return "TRAFFIC_KEY_" + subscription_name.upper().replace("-", "_")


def _stack_info(
    launch: Launch, started: Mapping[str, Child], subscriptions: dict[str, str], *, with_host: bool
) -> StackInfo:
    monitor_url = started["monitor"].url
    return StackInfo(
        gateway_url=started["gateway"].url,
        subscriptions=subscriptions,
        api_version=launch.config["api_version"],
        deployments=tuple(sorted(launch.config["deployments"])),
        simulator_url=started["simulator"].url,
        monitor=MonitorInfo(
            endpoint=monitor_url,
            workspace_id=launch.workspace_id,
            ca_cert=launch.ca_cert,
            instrumentation_key=launch.instrumentation_key,
            db_path=launch.monitor_db,
        ),
        ingestion=IngestionInfo(endpoint=monitor_url, rule_id=launch.rule_id, streams=_streams()),
        identity=IdentityInfo(endpoint=f"{started['identity'].url}/msi/token", header=launch.identity_header),
        smtp=SmtpInfo(
            host="127.0.0.1",
            port=launch.ports["smtp"],
            username=SMTP_USERNAME,
            password=SMTP_PASSWORD,
            starttls=True,
        ),
        acs_email=AcsEmailInfo(endpoint=started["acs-email"].url, ca_cert=launch.ca_cert),
        arm=ArmInfo(endpoint=started["arm"].url, account_id=account_of(launch.config).resource_id),
        outbox_dir=launch.outbox_dir,
        storage=StorageInfo(connection_string=azurite_connection_string(launch.ports)),
        functions_url=f"http://127.0.0.1:{launch.ports['functions']}" if with_host else None,
    )


def start_stack(
    data_dir: Path,
    *,
    fixed_ports: bool = False,
    with_host: bool = False,
    echo: bool = False,
    metrics_flush_seconds: float | None = None,
    config_file: Path = CONFIG_FILE,
    host_schedules: bool = True,
    bypass_share: float | None = None,
    bill_demo: bool = False,
    now: datetime | None = None,
    chaos_file: Path | None = None,
    dashboard: bool = False,
) -> Stack:
    """Start every stand-in (and the app host when asked); stop them all if any fails. `bill_demo`: hand the
    stand-ins the day before `now`'s history first (standins/history.py). `chaos_file`: the fault-injection
    control file the monitor, gateway, mail, ACS and ARM stand-ins watch (standins/chaos.py)."""
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    launch = Launch.create(
        data_dir,
        fixed_ports=fixed_ports,
        config_file=config_file,
        metrics_flush_seconds=metrics_flush_seconds,
        host_schedules=host_schedules,
        bypass_share=bypass_share,
        bill_demo=bill_demo,
        chaos_file=chaos_file.resolve() if chaos_file is not None else None,
    )
    config = launch.config
    children: list[Child] = []
    try:
        # The gateway's subscription keys, generated at each start; the gateway reads them from this file.
        subscriptions = {sub["name"]: "local-" + secrets.token_hex(16) for sub in config["subscriptions"]}
        _write_private(
            launch.subscriptions_file,
            [{**sub, "key": subscriptions[sub["name"]]} for sub in config["subscriptions"]],
        )
        history_day = previous_day(now or datetime.now(UTC))
        history = (
            seed_meters(launch.bill_demo, history_day, data_dir, launch.meters_file) if launch.bill_demo else []
        )
        started = start_services(STANDINS, launch, children, echo=echo)
        if launch.bill_demo is not None:
            _seed_metrics(launch, started, history, history_day, echo=echo)
        info = _stack_info(launch, started, subscriptions, with_host=with_host)
        settings = app_settings_for(info)
        settings.update(sink_settings(settings, f"https://127.0.0.1:{DEFAULT_PORTS['webhook_sink']}/",
                                      started["webhook-sink"].url + "/"))  # fmt: skip
        if launch.bill_demo is not None:
            settings.update(launch.bill_demo.app_settings)
        if dashboard:  # alert emails link the local dashboard, as they link the workbook in Azure
            settings["ALERT_DASHBOARD_URL"] = f"http://127.0.0.1:{launch.ports['dashboard']}/"
        _write_private(launch.settings_file, {"IsEncrypted": False, "Values": settings})
        stack = Stack(data_dir, info, settings, children)
        _write_private(stack.stack_file, info.to_json())
        if with_host or dashboard:
            late = ((DASHBOARD,) if dashboard else ()) + ((FUNCTIONS_HOST,) if with_host else ())
            start_services(late, launch, children, echo=echo)
    except BaseException:
        stop_all(children)
        raise
    return stack


def _seed_metrics(
    launch: Launch, started: Mapping[str, Child], calls: list[Call], day: datetime, *, echo: bool
) -> None:
    try:
        sent = seed_metrics(calls, day, launch.data_dir, launch.config_file, monitor_url=started["monitor"].url,
                            instrumentation_key=launch.instrumentation_key, ca_cert=launch.ca_cert)  # fmt: skip
    except Exception as error:  # a refused export, the monitor gone: the demo cannot run as documented
        raise StackError(f"bill demo: the history of {day:%Y-%m-%d} could not reach the monitor: {error}") from error
    if echo:
        tokens = sum(call.prompt_tokens + call.completion_tokens for call in calls)
        done = "seeded" if sent else f"seeded by an earlier start in {launch.data_dir}"
        print(f"bill demo: {day:%Y-%m-%d} UTC {done} ({len(calls)} calls, {tokens:,} tokens, in the gateway's "
              "metrics and the account's meters)", flush=True)  # fmt: skip


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
    parser.add_argument(
        "--bypass-share",
        type=float,
        default=None,
        help='the bypass demo: this share of the calls to the "gateway"."bypass" deployment skips the gateway\'s '
        "metering (make run BYPASS_SHARE=0.05)",
    )
    parser.add_argument(
        "--bill-demo",
        action="store_true",
        help="the bill demo: seed the previous UTC day's history and bill it over our prices (stack.config.json "
        '"bill_demo"; make run BILL_DEMO=1)',
    )
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
            bypass_share=args.bypass_share,
            bill_demo=args.bill_demo,
            dashboard=True,
        )
    except StackError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    info = stack.info
    print(
        f"stack up: gateway {info.gateway_url}/inference, monitor {info.monitor.endpoint}, "
        f"SMTP {info.smtp.host}:{info.smtp.port}",
        flush=True,
    )
    print(f"  stack description: {stack.stack_file}", flush=True)
    print(f"  app settings:      {args.data_dir / 'local.settings.json'}", flush=True)
    print(f"  metrics store:     {info.monitor.db_path}", flush=True)
    print(
        f"  alert emails:      {info.outbox_dir} (the sample's demo budget is $0.05/day for all traffic: "
        "the first alert lands there within about two minutes; open the .eml in a mail client)",
        flush=True,
    )
    print(f"  alert webhooks:    {args.data_dir / 'webhooks'} (the demo budget alert as a Teams card and a Slack "
          "message, beside the email)", flush=True)  # fmt: skip
    print(f"  cost dashboard:    {dashboard_url(stack)} (the workbook's panels on the local monitor)", flush=True)
    if args.bill_demo:
        print(
            "  bill demo:         the first costs run compares yesterday with the Cost Management stand-in's bill "
            "(billed over our list prices): a bill_gap alert lands in the outbox within about two minutes",
            flush=True,
        )
    if info.functions_url:
        print(
            f"  functions host:    {info.functions_url} "
            f"(run a timer now: curl -X POST {info.functions_url}/admin/functions/costs "
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
