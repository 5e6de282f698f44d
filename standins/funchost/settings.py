"""App settings from local.settings.json, loaded the way Core Tools' ``func start`` loads them.

The ``Values`` become environment variables (where the app reads its settings), but a variable
already set in the environment wins: Core Tools logs "Skipping '<name>' from local settings as
it's already defined in current environment variables." and so do we.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("funchost")

DEFAULT_HTTP_PORT = 7071


class LocalSettingsError(ValueError):
    """local.settings.json is missing, malformed or uses a feature the local host does not support."""


@dataclass(frozen=True)
class LocalSettings:
    values: dict[str, str]
    local_http_port: int | None = None
    applied: list[str] = field(default_factory=list)  # names set from the file
    skipped: list[str] = field(default_factory=list)  # names the environment already had


def _setting_text(path: Path, name: str, value: Any) -> str | None:
    if value is None:
        return None  # a null value sets nothing, as in Core Tools
    if isinstance(value, bool):
        return "True" if value else "False"  # .NET's bool-to-string, what Core Tools would produce
    if isinstance(value, str | int | float):
        return str(value)
    raise LocalSettingsError(f"{path}: Values.{name} must be a string, got {type(value).__name__}")


def read_local_settings(path: Path) -> LocalSettings:
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))  # editors on Windows add a BOM
    except FileNotFoundError as error:
        raise LocalSettingsError(f"{path}: settings file not found") from error
    except json.JSONDecodeError as error:
        raise LocalSettingsError(f"{path}: not valid JSON: {error}") from error
    if not isinstance(document, dict):
        raise LocalSettingsError(f"{path}: expected a JSON object with a 'Values' object")
    if document.get("IsEncrypted"):
        raise LocalSettingsError(
            f"{path}: encrypted settings are not supported; decrypt with `func settings`"
        )
    raw_values = document.get("Values", {})
    if not isinstance(raw_values, dict):
        raise LocalSettingsError(f"{path}: 'Values' must be an object of name -> string")
    values = {
        name: text for name, raw in raw_values.items() if (text := _setting_text(path, name, raw)) is not None
    }
    port = (document.get("Host") or {}).get("LocalHttpPort")
    return LocalSettings(values=values, local_http_port=int(port) if port is not None else None)


def load_local_settings(path: str | Path, environ: MutableMapping[str, str] | None = None) -> LocalSettings:
    """Put the file's Values into ``environ`` (default ``os.environ``) without overriding existing ones."""
    target = os.environ if environ is None else environ
    settings = read_local_settings(Path(path))
    for name, value in settings.values.items():
        if name in target:
            log.info(
                "Skipping '%s' from local settings as it's already defined in current environment variables.",
                name,
            )
            settings.skipped.append(name)
        else:
            target[name] = value
            settings.applied.append(name)
    return settings
