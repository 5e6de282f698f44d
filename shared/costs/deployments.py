"""Deployment -> model: discovered from the model accounts through ARM, overridden by deployments.json.

Azure deployment names are the customer's own. The costs run learns what each one serves from the
accounts behind the gateway (COST_MODEL_ACCOUNTS): ARM's list-deployments call
    GET {ARM}/subscriptions/{s}/resourceGroups/{g}/providers/Microsoft.CognitiveServices/accounts/{a}
        /deployments?api-version=2025-09-01
answers value[] = Deployment {name, sku {name, capacity}, systemData {createdAt, ...}, properties {model {format,
name, version}, ...}} and nextLink while there are more pages (Azure/azure-rest-api-specs specification/
cognitiveservices/resource-manager/Microsoft.CognitiveServices/stable/2025-09-01/cognitiveservices.json,
Deployments_List; read 2026-11-30). azure-mgmt-cognitiveservices 14.1.0 makes that call, pages included, as
client.deployments.list(resource_group, account) (operations/_deployments_operations.py; default
api-version 2025-09-01). The managed identity needs Microsoft.CognitiveServices/accounts/deployments/read
on each account. No built-in role is that narrow: Reader (acdd72a7-3385-48ef-bd42-f606fba81ae7, */read) has it
but reads everything in its scope; the Cognitive Services OpenAI User / Contributor roles add inference data
actions; Cognitive Services Usages Reader has only locations/usages/read (MicrosoftDocs/azure-docs articles/
role-based-access-control/built-in-roles/ai-machine-learning.md). infra/app/ai.bicep therefore defines a custom
role with that one action and infra/app/rbac.bicep assigns it on the account. The list is read once per
costs run (the run builds one map).

The file {"deployments": {"my-gpt4o-prod": "gpt-4o", ...}} remains for deployments outside those accounts
(another account, another provider) and wins over a discovered deployment of the same name (logged). An entry
is the model name, or {"model": ..., "version": ..., "sku": ..., "capacity": ...} (all but model optional; sku
is the deployment type, one of shared/costs/catalog.DEPLOYMENT_TYPES, and picks that type's prices; capacity is
the PTUs of a provisioned deployment, which shared/costs/ptu.py bills by the hour). A plain name has no known
type: the price table's untyped prices apply.
Lookup is exact, then case-insensitive (Azure treats deployment names case-insensitively); a deployment
found in neither resolves to itself, the common case where a deployment is named after its model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from shared.costs.catalog import DEPLOYMENT_TYPES
from shared.errors import AzureServiceError
from shared.json_input import Fields, Problems, choice, read_json_file, show, text, whole
from shared.windows import as_utc

if TYPE_CHECKING:
    from azure.mgmt.cognitiveservices import CognitiveServicesManagementClient

    from shared.azure_clients import ModelAccount

log = logging.getLogger(__name__)

_DEPLOYMENT_MAP = "deployment map"
# What the identity needs on each account, for the error message of a refused read.
READ_ROLE = "Microsoft.CognitiveServices/accounts/deployments/read (infra's deployments reader role, or Reader)"


@dataclass(frozen=True, slots=True)
class Deployment:
    """What a deployment serves. From the file only the model is known; ARM also gives the rest."""

    name: str
    model: str
    source: str  # the account's resource id, or the deployments.json path
    model_version: str | None = None
    # ARM's sku.name is the deployment type: GlobalStandard, DataZoneStandard, Standard, GlobalBatch,
    # DataZoneBatch, ProvisionedManaged, GlobalProvisionedManaged, DataZoneProvisionedManaged, ...
    # (learn.microsoft.com/azure/ai-foundry/openai/how-to/deployment-types). The price table keys on it
    # (PriceTable.prices_for's deployment_type); None: unknown, priced at the untyped prices.
    sku: str | None = None
    capacity: int | None = None  # sku.capacity: thousands of tokens per minute, or PTUs when provisioned
    # ARM systemData.createdAt (UTC): a provisioned deployment bills nothing before it. None: unknown (the file,
    # or an ARM answer without systemData); shared/costs/ptu.py then bills every window it is asked for.
    created_at: datetime | None = None

    def price_key(self) -> str:
        """The model, version and type this deployment is priced as, for the unpriced log and summary."""
        return describe_price_key(self.model, self.model_version, self.sku)


def describe_price_key(model: str, version: str | None, deployment_type: str | None) -> str:
    """'gpt-4o (version 2024-11-20, DataZoneStandard)'; unknown parts are left out ('mystery-model')."""
    known = [f"version {version}" if version else None, deployment_type]
    details = ", ".join(part for part in known if part)
    return f"{model} ({details})" if details else model


class DeploymentDiscovery(Protocol):
    """Where the run learns the deployments of the model accounts (ARM in Azure and locally)."""

    def deployments(self) -> list[Deployment]: ...


_ENTRY = 'a model name (a non-empty string) or {"model": ..., "version": ..., "sku": ..., "capacity": ...}'
_ENTRY_KEYS = frozenset({"model", "version", "sku", "capacity", "note"})
# A file entry: the model name, or its object form.
FileEntry = str | Mapping[str, Any]


def _checked_deployments(deployments: Fields) -> dict[str, Deployment]:
    """deployment -> entry (model stripped); each problem added to the reader's problems."""
    checked: dict[str, Deployment] = {}
    first_by_folded: dict[str, str] = {}
    source = deployments.problems.source
    for deployment, raw in deployments.raw.items():
        if isinstance(raw, Mapping):
            entry = deployments.object(deployment, expected=_ENTRY)
            assert entry is not None  # a Mapping: object() gives its Fields
            entry.unknown(_ENTRY_KEYS)
            model = entry.get("model", text, expected="a model name (a non-empty string)")
            version = entry.optional("version", text)
            sku = entry.optional("sku", choice(DEPLOYMENT_TYPES))
            capacity = entry.optional("capacity", whole(minimum=1), expected="a whole number of units >= 1 (PTUs)")
        else:
            model = deployments.get(deployment, text, expected=_ENTRY)
            version = sku = capacity = None
        if model is None:
            continue
        found = Deployment(deployment, model, source, model_version=version, sku=sku, capacity=capacity)
        folded = deployment.casefold()
        other = first_by_folded.setdefault(folded, deployment)
        if other != deployment and (checked[other].model, checked[other].sku) != (model, sku):
            deployments.problem(
                deployment,
                f"differs only in letter case from {deployments.path_of(other)}, mapped to a different model or sku; "
                "expected one entry (Azure deployment names ignore case)",
            )
        checked[deployment] = found
    return checked


class DeploymentMap:
    """Azure deployment name -> model name; unmapped deployments are their own model name.

    Built from a name -> model (or {"model", "version", "sku"}) mapping (the file's shape) and, for
    discovered deployments, from Deployment entries (`with_discovered`); `deployment(name)` gives the
    whole entry (sku, capacity).
    """

    def __init__(self, deployments: Mapping[str, FileEntry] | None = None, *, source: str = "(deployment map)") -> None:
        self.source = source
        problems = Problems(source, _DEPLOYMENT_MAP)
        self._entries = _checked_deployments(problems.fields(dict(deployments or {}), "deployments"))
        problems.raise_if_any()
        self._folded = _folded(self._entries)

    @classmethod
    def _of(cls, entries: Mapping[str, Deployment], source: str) -> DeploymentMap:
        """A map of entries already checked (the file's, or the file's over the discovered ones)."""
        built = cls(source=source)
        built._entries = dict(entries)
        built._folded = _folded(built._entries)
        return built

    @property
    def deployments(self) -> Mapping[str, str]:
        return {name: entry.model for name, entry in self._entries.items()}

    @property
    def entries(self) -> tuple[Deployment, ...]:
        """Every deployment the map knows (the file's over the discovered ones), one per name."""
        return tuple(self._entries.values())

    def deployment(self, name: str) -> Deployment | None:
        """The entry for `name` (exact, then ignoring case), or None when neither file nor account has it."""
        return self._entries.get(name) or self._folded.get(name.casefold())

    def model_for(self, deployment: str) -> str:
        entry = self.deployment(deployment)
        return entry.model if entry is not None else deployment

    def deployment_type_for(self, deployment: str) -> str | None:
        """The deployment's type (ARM sku.name) to price it by; None: unknown, the untyped prices apply."""
        entry = self.deployment(deployment)
        return entry.sku if entry is not None else None

    def price_key_for(self, deployment: str) -> str:
        """What an unpriced deployment was looked up as (model, version, type), for logs and the run summary."""
        entry = self.deployment(deployment)
        return entry.price_key() if entry is not None else describe_price_key(deployment, None, None)

    def with_discovered(self, discovered: Iterable[Deployment]) -> DeploymentMap:
        """This map (the file) over the discovered deployments: on the same name the file wins, logged."""
        entries: dict[str, Deployment] = {}
        for entry in discovered:
            override = self.deployment(entry.name)
            if override is not None:
                log.info(
                    "deployment %s: %s maps it to %s, over %s's %s (the file wins)",
                    entry.name, self.source, override.model, entry.source, entry.model,
                )  # fmt: skip
                continue
            first = entries.setdefault(entry.name, entry)
            if first is not entry:  # two accounts, one name: the first account listed in the setting
                log.warning(
                    "deployment %s is in %s and %s; priced as %s's %s",
                    entry.name, first.source, entry.source, first.source, first.model,
                )  # fmt: skip
        entries.update(self._entries)
        return DeploymentMap._of(entries, self.source)


def _folded(entries: Mapping[str, Deployment]) -> dict[str, Deployment]:
    folded: dict[str, Deployment] = {}
    for name, entry in entries.items():
        folded.setdefault(name.casefold(), entry)
    return folded


def load_deployment_map(path: Path | None) -> DeploymentMap:
    """Read {"deployments": {name: model or {"model", "version", "sku"}}} (optional "note"); None: the identity map."""
    if path is None:
        return DeploymentMap()
    document = read_json_file(path, _DEPLOYMENT_MAP)
    problems = Problems(document.source, _DEPLOYMENT_MAP)
    top = problems.fields(document.root, "")
    expected = 'an object {"<deployment>": "<model>" or {"model": ..., "sku": ...}, ...}'
    if not isinstance(document.root, Mapping):
        problems.fail(1, "", f'expected {{"deployments": {expected}}}, got {show(document.root)}')
    deployments = top.object("deployments", expected=expected)
    top.unknown({"deployments", "note"})
    checked = _checked_deployments(deployments) if deployments is not None else {}
    problems.raise_if_any()
    return DeploymentMap._of(checked, document.source)


class ArmDeploymentDiscovery:
    """The deployments of each account, listed through ARM with the app's identity (one client per subscription)."""

    def __init__(
        self, accounts: Sequence[ModelAccount], client_for: Callable[[str], CognitiveServicesManagementClient]
    ) -> None:
        # client_for(subscription_id): AzureAccess.cognitive_services_client in the app, any client in tests.
        self._accounts = tuple(accounts)
        self._client_for = client_for

    def deployments(self) -> list[Deployment]:
        clients: dict[str, CognitiveServicesManagementClient] = {}
        found: list[Deployment] = []
        for account in self._accounts:
            client = clients.get(account.subscription_id)
            if client is None:
                client = clients[account.subscription_id] = self._client_for(account.subscription_id)
            found.extend(list_account_deployments(client, account))
        return found


def list_account_deployments(client: CognitiveServicesManagementClient, account: ModelAccount) -> list[Deployment]:
    """Every deployment of `account` (all pages). A refused or failed read is an AzureServiceError naming the
    account and the role, never an empty list: pricing with a silently empty map would misprice."""
    from azure.core.exceptions import AzureError

    from shared.errors import azure_service_error

    try:
        return [_deployment(item, account) for item in client.deployments.list(account.resource_group, account.name)]
    except AzureError as error:
        mapped = azure_service_error(AzureServiceError, f"listing the deployments of {account.resource_id}", error)
        if getattr(error, "status_code", None) in (401, 403):
            mapped = AzureServiceError(f"{mapped}; the app's managed identity needs {READ_ROLE} on that account")
        raise mapped from error


def _deployment(item: Any, account: ModelAccount) -> Deployment:
    """An SDK Deployment as ours; one without a model (ARM allows it while provisioning) serves its own name."""
    properties = getattr(item, "properties", None)
    model = getattr(properties, "model", None)
    sku = getattr(item, "sku", None)
    # The SDK reads systemData.createdAt (ISO 8601) into an aware datetime (models.SystemData.created_at).
    created_at = getattr(getattr(item, "system_data", None), "created_at", None)
    return Deployment(
        name=str(item.name),
        model=str(getattr(model, "name", None) or item.name),
        source=account.resource_id,
        model_version=getattr(model, "version", None),
        sku=getattr(sku, "name", None),
        capacity=getattr(sku, "capacity", None),
        created_at=as_utc(created_at) if isinstance(created_at, datetime) else None,
    )


def deployment_map_for_run(file_map: DeploymentMap, discovery: DeploymentDiscovery | None) -> DeploymentMap:
    """The run's one map: the file over what the accounts list now (no discovery: the file alone)."""
    if discovery is None:
        return file_map
    discovered = discovery.deployments()
    log.info("deployments discovered through ARM: %d", len(discovered))
    return file_map.with_discovered(discovered)
