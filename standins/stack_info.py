"""Where everything of a running local stack is: the typed form of `.local/stack.json`.

`start_stack` builds a StackInfo from the started stand-ins, writes it with `to_json` and tests,
benchmarks and tools read it through its fields; `from_json` reads the file back into the same object.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class MonitorInfo:
    """The Azure Monitor stand-in: query endpoint, workspace, its CA and its DuckDB file."""

    endpoint: str
    workspace_id: str
    ca_cert: Path
    instrumentation_key: str
    db_path: Path


@dataclass(frozen=True)
class IngestionInfo:
    """The Logs Ingestion API (served by the monitor stand-in): endpoint, DCR and stream per custom table."""

    endpoint: str
    rule_id: str
    streams: Mapping[str, str]


@dataclass(frozen=True)
class IdentityInfo:
    """The managed-identity endpoint as the Functions platform publishes it (IDENTITY_ENDPOINT/HEADER)."""

    endpoint: str
    header: str


@dataclass(frozen=True)
class SmtpInfo:
    host: str
    port: int
    username: str
    password: str
    starttls: bool


@dataclass(frozen=True)
class AcsEmailInfo:
    endpoint: str
    ca_cert: Path


@dataclass(frozen=True)
class ArmInfo:
    """The ARM stand-in and the one model account it serves (COST_MODEL_ACCOUNTS locally)."""

    endpoint: str
    account_id: str


@dataclass(frozen=True)
class StorageInfo:
    """Azurite (blob, queue, table)."""

    connection_string: str


@dataclass(frozen=True)
class StackInfo:
    gateway_url: str
    subscriptions: Mapping[str, str]  # subscription name -> key generated at this start
    api_version: str
    deployments: tuple[str, ...]
    simulator_url: str
    monitor: MonitorInfo
    ingestion: IngestionInfo
    identity: IdentityInfo
    smtp: SmtpInfo
    acs_email: AcsEmailInfo
    arm: ArmInfo
    outbox_dir: Path
    storage: StorageInfo
    functions_url: str | None  # None when the stack runs without the Functions host

    def to_json(self) -> dict[str, Any]:
        """The JSON document of stack.json (paths as strings, tuples as lists)."""
        document: dict[str, Any] = json.loads(json.dumps(asdict(self), default=str))
        return document

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> StackInfo:
        monitor, ingestion, identity = document["monitor"], document["ingestion"], document["identity"]
        smtp, acs_email = document["smtp"], document["acs_email"]
        return cls(
            gateway_url=document["gateway_url"],
            subscriptions=dict(document["subscriptions"]),
            api_version=document["api_version"],
            deployments=tuple(document["deployments"]),
            simulator_url=document["simulator_url"],
            monitor=MonitorInfo(
                endpoint=monitor["endpoint"],
                workspace_id=monitor["workspace_id"],
                ca_cert=Path(monitor["ca_cert"]),
                instrumentation_key=monitor["instrumentation_key"],
                db_path=Path(monitor["db_path"]),
            ),
            ingestion=IngestionInfo(ingestion["endpoint"], ingestion["rule_id"], dict(ingestion["streams"])),
            identity=IdentityInfo(identity["endpoint"], identity["header"]),
            smtp=SmtpInfo(smtp["host"], int(smtp["port"]), smtp["username"], smtp["password"], bool(smtp["starttls"])),
            acs_email=AcsEmailInfo(acs_email["endpoint"], Path(acs_email["ca_cert"])),
            arm=ArmInfo(document["arm"]["endpoint"], document["arm"]["account_id"]),
            outbox_dir=Path(document["outbox_dir"]),
            storage=StorageInfo(document["storage"]["connection_string"]),
            functions_url=document["functions_url"],
        )

    @classmethod
    def read(cls, path: Path) -> StackInfo:
        """A stack.json written by `python -m standins.stack` (or `start_stack`)."""
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")))
