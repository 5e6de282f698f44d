"""Write local.settings.json for `func start` against the resources `azd up` provisioned.

Values: every app setting of shared/config.py at its default, overridden by the azd environment
value of the same name (GATEWAY_URL, LOGS_INGESTION_ENDPOINT, LOGS_INGESTION_RULE_ID,
LOG_ANALYTICS_WORKSPACE_ID, COST_METRICS_SCHEMA, COST_METRICS_RESOURCE_ID, COST_STATE_TABLE_ENDPOINT,
COST_STATE_TABLE); the personas' APIM
subscription keys, and the alert channels' webhook URLs once ALERT_CHANNELS_IN_KEY_VAULT is true (the
settings the rules file's recipient groups name), are read from the Key Vault with your own sign-in
(`az login` / `azd auth login`; `azd up` gave you Key Vault Secrets User). The app then calls Azure as
you, not as its managed identity, so AZURE_CLIENT_ID stays empty. The Functions host's own storage is Azurite
(`npx azurite --silent --disableTelemetry --location .local/azurite`).

    .venv/bin/python tools/write_local_settings.py                  # reads `azd env get-values`
    .venv/bin/python tools/write_local_settings.py --env-file .azure/<env>/.env --no-secrets
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared.alerts.rules import load_rules  # noqa: E402
from shared.config import SETTINGS  # noqa: E402
from shared.traffic.personas import key_settings  # noqa: E402  (the settings the personas name)

PERSONAS_FILE = ROOT / "shared" / "traffic" / "personas.sample.json"
RULES_FILE = ROOT / "shared" / "alerts" / "alerts.sample.json"  # infra's ALERT_RULES_FILE
# azd outputs that must not reach a laptop: the app identity's client id would make the SDKs look
# for a managed identity that only exists in Azure.
NOT_LOCAL = frozenset({"AZURE_CLIENT_ID"})
HOST_VALUES = {"FUNCTIONS_WORKER_RUNTIME": "python", "AzureWebJobsStorage": "UseDevelopmentStorage=true"}
KEY_VAULT_API_VERSION = "7.4"

SecretReader = Callable[[str, str], str]


def parse_env(text: str) -> dict[str, str]:
    """KEY="value" lines as `azd env get-values` prints them (and .azure/<env>/.env holds them)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, raw = line.split("=", 1)
        parts = shlex.split(raw) if raw else [""]
        values[key.strip()] = parts[0] if parts else ""
    return values


def azd_values() -> dict[str, str]:
    result = subprocess.run(["azd", "env", "get-values"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(
            f"`azd env get-values` failed: {result.stderr.strip()} (run `azd up` first, or pass --env-file)"
        )
    return parse_env(result.stdout)


def secret_name(setting: str) -> str:
    """The Key Vault secret infra writes each key to (main.bicep: lower case, '_' -> '-')."""
    return setting.lower().replace("_", "-")


def read_secret_with_az_identity(vault_uri: str, name: str) -> str:
    from azure.identity import DefaultAzureCredential

    token = DefaultAzureCredential(exclude_managed_identity_credential=True).get_token(
        "https://vault.azure.net/.default"
    )
    url = f"{vault_uri.rstrip('/')}/secrets/{urllib.parse.quote(name)}?api-version={KEY_VAULT_API_VERSION}"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token.token}"})
    with urllib.request.urlopen(request, timeout=30) as response:  # the https vault URI azd wrote
        value: str = json.load(response)["value"]
    return value


def build_settings(
    env: Mapping[str, str], *, read_secret: SecretReader | None, keys: list[str] | None = None
) -> dict[str, object]:
    values: dict[str, str] = dict(HOST_VALUES)
    for setting in SETTINGS:
        value = env.get(setting.name) if setting.name not in NOT_LOCAL else None
        values[setting.name] = value if value is not None else (setting.default or "")
    vault_uri = env.get("KEY_VAULT_URI", "")
    for setting_name in keys if keys is not None else key_settings(PERSONAS_FILE):
        if read_secret is None:
            values[setting_name] = ""
        elif not vault_uri:
            raise SystemExit("KEY_VAULT_URI is not in the azd environment: run `azd up` first")
        else:
            values[setting_name] = read_secret(vault_uri, secret_name(setting_name))
    # The alert channels' URLs: empty (switched off) until infra references them (ALERT_CHANNELS_IN_KEY_VAULT).
    in_vault = env.get("ALERT_CHANNELS_IN_KEY_VAULT", "false").lower() == "true"
    for setting_name in load_rules(RULES_FILE).channel_settings():
        read = read_secret if in_vault and vault_uri else None
        values[setting_name] = read(vault_uri, secret_name(setting_name)) if read else ""
    return {"IsEncrypted": False, "Values": values}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-file", type=Path, help="a dotenv file instead of `azd env get-values`")
    parser.add_argument("--output", type=Path, default=ROOT / "local.settings.json")
    parser.add_argument("--no-secrets", action="store_true", help="leave the subscription keys empty")
    args = parser.parse_args(argv)
    env = parse_env(args.env_file.read_text(encoding="utf-8")) if args.env_file else azd_values()
    settings = build_settings(env, read_secret=None if args.no_secrets else read_secret_with_az_identity)
    # The file may hold subscription keys: readable by you only (it is in .gitignore and .funcignore).
    descriptor = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(settings, handle, indent=2)
        handle.write("\n")
    print(f"wrote {args.output} for {env.get('AZURE_FUNCTION_APP_NAME', 'the azd environment')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
