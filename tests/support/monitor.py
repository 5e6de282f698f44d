"""A fresh Azure Monitor stand-in configuration per test."""

from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

from standins.monitor import MonitorConfig


def fresh_monitor_config(
    directory: Path, identity_secret: str, *, db_name: str = "monitor.duckdb", **overrides: Any
) -> MonitorConfig:
    """A monitor of its own (new workspace, DCR and instrumentation key) with its files in `directory`."""
    config = MonitorConfig(
        db_path=directory / db_name,
        workspace_id=str(uuid.uuid4()),
        dcr_immutable_id="dcr-" + uuid.uuid4().hex,
        instrumentation_key=str(uuid.uuid4()),
        tls_dir=directory / "tls",
        identity_secret=identity_secret,
    )
    return replace(config, **overrides)
