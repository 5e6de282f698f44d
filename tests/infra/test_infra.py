"""infra/ against the code: every Bicep file parses, and what infra declares is what the app reads.

Settings (shared/config.py) = the function app's appSettings = local.settings.sample.json;
custom tables and DCR streams = shared/logs/schemas/log_tables.json; the APIM policy is the repository's
policy.xml with the placeholders the local gateway fills; APIM operations = the gateway stand-in's;
model deployments cover the personas and the price table; outputs are UPPER_SNAKE and not secret;
role assignments follow guid(scope, principal, role) with named role ids.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shared.config import HOST_SETTINGS, SETTINGS
from shared.costs.pricing import load_deployment_map, load_price_table
from shared.costs.query import QUERY_FILES
from standins.gateway.operations import API_ID, API_PATH, OPERATIONS
from tests.support.bicep import (
    INFRA,
    MAIN,
    ROOT,
    accessor_path,
    app_module,
    bicep_files,
    evaluate,
    function_call,
    identifier,
    parse,
    resource_body,
    resources_of_type,
    walk,
)
from tests.support.sections import channel_settings

SAMPLE = json.loads((ROOT / "local.settings.sample.json").read_text(encoding="utf-8"))["Values"]
PERSONAS = json.loads((ROOT / "shared" / "traffic" / "personas.sample.json").read_text(encoding="utf-8"))["personas"]
LOG_TABLES = json.loads((ROOT / "shared" / "logs" / "schemas" / "log_tables.json").read_text(encoding="utf-8"))
STACK = json.loads((ROOT / "standins" / "stack.config.json").read_text(encoding="utf-8"))
DEPLOYMENT_MAP_PATH = ROOT / "shared" / "costs" / "prices" / "deployments.json"
PRICE_TABLE_PATH = ROOT / "shared" / "costs" / "prices" / "catalog.json"

# How the Functions host settings of local.settings.sample.json appear on Flex Consumption.
# AzureWebJobsStorage: an identity-based connection (AzureWebJobsStorage__*), never a connection string.
# FUNCTIONS_WORKER_RUNTIME: functionAppConfig.runtime.name; Flex Consumption rejects the app setting.
HOST_SETTING_PREFIXES = {"AzureWebJobsStorage": "AzureWebJobsStorage__"}
HOST_SETTINGS_IN_RUNTIME = {"FUNCTIONS_WORKER_RUNTIME": "python"}
# Read by the Functions host for its own telemetry; not app settings of ours, so not in the sample.
INFRA_ONLY_HOST_SETTINGS = {"APPLICATIONINSIGHTS_CONNECTION_STRING", "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"}


def main() -> dict[str, Any]:
    return parse(MAIN)


def persona_key_settings() -> dict[str, str]:
    """APIM subscription -> the app setting holding its key, from the persona file."""
    return {persona["subscription"]: persona["subscription_key_setting"] for persona in PERSONAS}


def traffic_subscriptions() -> list[dict[str, str]]:
    default: list[dict[str, str]] = main()["parameters"]["trafficSubscriptions"]["default"]
    return default


def main_app_settings() -> list[dict[str, Any]]:
    settings: list[dict[str, Any]] = main()["variables"]["appSettings"]["value"]
    return settings


def key_vault_settings() -> list[str]:
    loop = main()["variables"]["trafficKeySettings"]["value"]
    assert loop["loop_type"]["detail"]["array_name"] == "trafficSubscriptions"
    assert accessor_path(loop["config"]["name"]) == [loop["loop_type"]["detail"]["item_name"], "keySetting"]
    assert loop["config"]["value"].startswith("@Microsoft.KeyVault(")
    return [sub["keySetting"] for sub in traffic_subscriptions()]


def alert_channel_settings() -> list[str]:
    """The channel settings infra declares: Key Vault references (alertChannelsInKeyVault) or empty, one loop each."""
    template = main()
    choice = template["variables"]["alertChannelKeySettings"]["value"]["operator"]["operands"]
    assert (choice["condition"], choice["true_value"], choice["false_value"]) == (
        "alertChannelsInKeyVault", "alertChannelReferences", "alertChannelsOff",
    )  # fmt: skip
    for variable, value in (("alertChannelReferences", "@Microsoft.KeyVault("), ("alertChannelsOff", "")):
        loop = template["variables"][variable]["value"]
        assert loop["loop_type"]["detail"]["array_name"] == "alertChannelSettings"
        assert loop["config"]["name"] == loop["loop_type"]["detail"]["item_name"]
        assert loop["config"]["value"].startswith(value) if value else loop["config"]["value"] == ""
    names: list[str] = template["parameters"]["alertChannelSettings"]["default"]
    return names


def api_host_settings() -> list[str]:
    return [entry["name"] for entry in app_module("api")["variables"]["hostSettings"]["value"]]


def infra_setting_names() -> list[str]:
    return [entry["name"] for entry in main_app_settings()] + key_vault_settings() + alert_channel_settings()


# --- parsing -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_bicep_file_parses(path: Path) -> None:
    template = parse(path)
    assert template.get("resources") or template.get("modules"), f"{path} declares nothing"


def test_every_module_reference_exists() -> None:
    for path in bicep_files():
        for name, module in parse(path).get("modules", {}).items():
            target = path.parent / module["detail"]["path"]
            assert target.is_file(), f"{path.name}: module {name} -> {target} missing"


def test_every_loaded_file_exists() -> None:
    for path in bicep_files():
        for node in walk(parse(path)):
            for function in ("load_text_content", "load_json_content"):
                call = function_call(node, function)
                if call:
                    assert (path.parent / call["file_path"]).is_file(), f"{path.name}: {call['file_path']} missing"


# --- app settings --------------------------------------------------------------------------------


def test_infra_app_settings_are_the_config_settings() -> None:
    names = infra_setting_names()
    assert len(names) == len(set(names)), "a setting appears twice in main.bicep"
    expected = {s.name for s in SETTINGS} | set(persona_key_settings().values()) | channel_settings()
    assert set(names) == expected


def test_infra_app_settings_are_the_sample_keys() -> None:
    infra = set(infra_setting_names())
    host = set(HOST_SETTING_PREFIXES) | set(HOST_SETTINGS_IN_RUNTIME)
    assert host == set(HOST_SETTINGS), "a new host setting needs its Flex Consumption form here"
    assert set(SAMPLE) == infra | host


def test_host_settings_take_their_flex_consumption_form() -> None:
    names = api_host_settings()
    for setting, prefix in HOST_SETTING_PREFIXES.items():
        assert setting not in names
        assert any(name.startswith(prefix) for name in names)
    assert "FUNCTIONS_WORKER_RUNTIME" not in names
    runtime = resource_body(app_module("api")["resources"]["functionApp"])["properties"]["functionAppConfig"]["runtime"]
    assert runtime == {"name": HOST_SETTINGS_IN_RUNTIME["FUNCTIONS_WORKER_RUNTIME"], "version": "3.11"}
    assert set(names) - {n for n in names if n.startswith(tuple(HOST_SETTING_PREFIXES.values()))} == (
        INFRA_ONLY_HOST_SETTINGS
    )


# Where Azure deliberately differs from the config default: infra provisions Communication
# Services, so alerts go out through it with the managed identity instead of an SMTP relay.
AZURE_CHOICES = {"ALERT_DELIVERY": "acs"}


def test_literal_setting_values_are_the_config_defaults() -> None:
    """A default changed in config.py must change in infra too (or be wired from a resource)."""
    template = main()
    defaults = {s.name: s.default for s in SETTINGS} | AZURE_CHOICES
    for entry in main_app_settings():
        name, value = entry["name"], entry["value"]
        if not isinstance(value, str) or "${" in value:
            continue  # wired from a resource
        ref = identifier(template, value)
        if ref is None:
            assert value == defaults[name], f"{name}: infra {value!r} != config default {defaults[name]!r}"
        elif ref in template["parameters"] and "default" in template["parameters"][ref]:
            assert template["parameters"][ref]["default"] == defaults[name], f"{name}: param {ref} default"


@pytest.mark.parametrize(
    ("setting", "source"),
    [
        ("GATEWAY_URL", ["apim", "outputs", "gatewayUrl"]),
        ("LOGS_INGESTION_ENDPOINT", ["monitoring", "outputs", "logsIngestionEndpoint"]),
        ("LOGS_INGESTION_RULE_ID", ["monitoring", "outputs", "dataCollectionRuleImmutableId"]),
        ("LOG_ANALYTICS_WORKSPACE_ID", ["monitoring", "outputs", "logAnalyticsWorkspaceCustomerId"]),
        ("COST_STATE_TABLE_ENDPOINT", ["storage", "outputs", "tableEndpoint"]),
        ("AZURE_CLIENT_ID", ["identity", "outputs", "clientId"]),
        ("TRAFFIC_INGESTION_STREAM", ["logTables", "SyntheticTraffic_CL", "stream"]),
        ("COST_DCR_STREAM", ["logTables", "TokenCostSummary_CL", "stream"]),
    ],
)
def test_resource_decided_settings_are_wired_from_the_resource(setting: str, source: list[str]) -> None:
    values = {entry["name"]: entry["value"] for entry in main_app_settings()}
    assert accessor_path(values[setting]) == source


def test_module_outputs_the_settings_use_exist() -> None:
    template = main()
    for entry in main_app_settings():
        path = accessor_path(entry["value"])
        if len(path) == 3 and path[1] == "outputs":
            module = template["modules"][path[0]]
            outputs = parse(MAIN.parent / module["detail"]["path"])["outputs"]
            assert path[2] in outputs, f"{entry['name']}: module {path[0]} has no output {path[2]}"


def test_persona_subscriptions_have_an_apim_subscription_and_a_key_setting() -> None:
    declared = {sub["name"]: sub["keySetting"] for sub in traffic_subscriptions()}
    assert declared == persona_key_settings()
    stack_subscriptions = {sub["name"] for sub in STACK["subscriptions"]}
    assert set(declared) == stack_subscriptions, "the local gateway's subscriptions differ from infra's"


def test_alert_channel_references_name_the_secret_the_readme_tells_to_write() -> None:
    value = main()["variables"]["alertChannelReferences"]["value"]["config"]["value"]
    assert "SecretName=${replace(toLower(name), '_', '-')}" in value
    app = main()["modules"]["api"]["config"]["params"]["appSettings"]
    assert function_call(app, "concat") is not None and "alertChannelKeySettings" in str(app)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "az keyvault secret set --vault-name" in readme and "alert-teams-finops-url" in readme


def test_key_vault_secret_names_match_the_app_setting_references() -> None:
    apim = app_module("apim")
    secret = resource_body(apim["resources"]["subscriptionKeys"])
    main_value = main()["variables"]["trafficKeySettings"]["value"]["config"]["value"]
    rule = "replace(toLower(sub.keySetting), '_', '-')"
    assert f"SecretName=${{{rule}}}" in main_value
    name = function_call(secret["name"], "replace")
    assert name is not None and (name["old_string"], name["new_string"]) == ("_", "-")


# --- tables and DCR ------------------------------------------------------------------------------


def test_bicep_loads_the_custom_tables_from_log_tables_json() -> None:
    call = function_call(main()["variables"]["logTables"]["value"], "load_json_content")
    assert call is not None
    assert (MAIN.parent / call["file_path"]).resolve() == ROOT / "shared" / "logs" / "schemas" / "log_tables.json"
    assert call["json_path"] == "$.custom"
    assert accessor_path(main()["modules"]["monitoring"]["config"]["params"]["logTables"]) == ["logTables"]


def test_every_custom_table_is_created_with_its_columns() -> None:
    tables = app_module("monitoring")["resources"]["customTables"]["config"]
    assert tables["loop_type"]["detail"]["array_name"] == {
        "function": {"type": "items", "parameters": {"arg_1": "logTables"}}
    }
    item = tables["loop_type"]["detail"]["item_name"]
    body = tables["config"]
    assert accessor_path(body["name"]) == [item, "key"]
    assert accessor_path(body["properties"]["schema"]["name"]) == [item, "key"]
    assert accessor_path(body["properties"]["schema"]["columns"]) == [item, "value", "columns"]


def test_dcr_streams_are_the_custom_tables() -> None:
    rule = resource_body(app_module("monitoring")["resources"]["dataCollectionRule"])
    assert rule.get("kind") == "Direct"
    declarations = {key.strip("'"): value for key, value in rule["properties"]["streamDeclarations"].items()}
    custom = LOG_TABLES["custom"]
    assert set(declarations) == {table["stream"] for table in custom.values()}
    for table_name, table in custom.items():
        assert table["stream"] == f"Custom-{table_name}", "a custom table's stream is Custom-<table>"
        # the declared columns are exactly the table's columns in log_tables.json
        assert accessor_path(declarations[table["stream"]]["columns"]) == ["logTables", table_name, "columns"]
        assert all(column["type"] in _DCR_TYPES for column in table["columns"]), table_name
    flows = rule["properties"]["dataFlows"]
    item = flows["loop_type"]["detail"]["item_name"]
    assert accessor_path(flows["config"]["outputStream"]) == [item, "value", "stream"]
    assert [accessor_path(s) for s in flows["config"]["streams"]] == [[item, "value", "stream"]]


_DCR_TYPES = {"string", "int", "long", "real", "boolean", "dynamic", "datetime"}


def test_config_stream_defaults_are_the_log_tables_streams() -> None:
    defaults = {s.name: s.default for s in SETTINGS}
    assert defaults["TRAFFIC_INGESTION_STREAM"] == LOG_TABLES["custom"]["SyntheticTraffic_CL"]["stream"]
    assert defaults["COST_DCR_STREAM"] == LOG_TABLES["custom"]["TokenCostSummary_CL"]["stream"]


def test_application_insights_keeps_metric_dimensions() -> None:
    body = resource_body(app_module("monitoring")["resources"]["applicationInsights"])
    assert body["properties"]["CustomMetricsOptedInType"] == "WithDimensions"
    assert body["properties"]["WorkspaceResourceId"] == {
        "operator": {"type": "property_accessor", "operands": {"operand_1": "workspace", "operand_2": "id"}}
    }


# --- gateway -------------------------------------------------------------------------------------


def test_apim_policy_is_the_repository_policy_xml_with_its_placeholders_filled() -> None:
    apim = app_module("apim")
    policy = resource_body(apim["resources"]["apiPolicy"])["properties"]
    assert policy["format"] == "rawxml"
    replaced: dict[str, Any] = {}
    node = policy["value"]
    while (call := function_call(node, "replace")) is not None:
        replaced[call["old_string"]] = call["new_string"]
        node = call["original_string"]
    loaded = function_call(node, "load_text_content")
    assert loaded is not None
    assert (INFRA / "app" / loaded["file_path"]).resolve() == ROOT / STACK["gateway"]["policy_file"]
    policy_text = (ROOT / "policy.xml").read_text(encoding="utf-8")
    without_comments = re.sub(r"<!--.*?-->", "", policy_text, flags=re.S)
    placeholders = {f"{{{name}}}" for name in re.findall(r"\{([a-z][a-z0-9-]*)\}", without_comments)}
    assert set(replaced) == placeholders == {f"{{{name}}}" for name in STACK["gateway"]["policy_placeholders"]}
    # the same values as the local gateway
    assert accessor_path(replaced["{backend-id}"]) == ["backend", "name"]
    backend = resource_body(apim["resources"]["backend"])
    assert apim["parameters"][backend["name"]]["default"] == STACK["gateway"]["policy_placeholders"]["backend-id"]
    namespace = identifier(apim, replaced["{metric-namespace}"])
    assert namespace == "metricNamespace"
    assert (
        main()["parameters"]["metricNamespace"]["default"]
        == STACK["gateway"]["policy_placeholders"]["metric-namespace"]
    )


def test_apim_api_and_operations_are_the_gateway_stand_ins() -> None:
    apim = app_module("apim")
    api = resource_body(apim["resources"]["api"])
    assert api["name"] == API_ID
    assert "/" + api["properties"]["path"] == API_PATH
    assert api["properties"]["subscriptionKeyParameterNames"]["header"] == "api-key"
    declared = [(op["name"], op["method"], op["urlTemplate"]) for op in apim["variables"]["operations"]["value"]]
    assert declared == [(op.operation_id, op.method, op.template) for op in OPERATIONS]


def test_api_diagnostic_enables_metrics() -> None:
    diagnostic = resource_body(app_module("apim")["resources"]["apiDiagnostics"])
    assert diagnostic["name"] == "applicationinsights"
    assert diagnostic["properties"]["metrics"] is True
    assert "frontend" not in diagnostic["properties"], "no request/response bodies in telemetry"


def test_model_deployments_cover_the_personas_and_the_price_table() -> None:
    deployments = main()["parameters"]["modelDeployments"]["default"]
    names = {d["name"] for d in deployments}
    assert {p["deployment"] for p in PERSONAS} <= names
    mapping = load_deployment_map(DEPLOYMENT_MAP_PATH)
    prices = load_price_table(PRICE_TABLE_PATH)
    for deployment in deployments:
        model = mapping.model_for(deployment["name"])
        assert model == deployment["model"], deployment
        # Priced by its model version and deployment type, as the run looks it up.
        typed = prices.prices_for(model, datetime(2026, 11, 30, tzinfo=UTC), deployment["sku"], deployment["version"])
        assert typed is not None, f"{deployment['name']}: {model} {deployment['sku']} has no price"
        assert typed.deployment_type == deployment["sku"], deployment
        local = STACK["deployments"].get(deployment["name"])
        if local:
            assert (local["model"], local["model_version"]) == (deployment["model"], deployment["version"])


# --- azd parameters ------------------------------------------------------------------------------

# The principal types azd puts in AZURE_PRINCIPAL_TYPE (Azure/azure-dev
# cli/azd/pkg/infra/provisioning/current_principal_id_provider.go: UserType, ServicePrincipalType).
AZD_PRINCIPAL_TYPES = {"User", "ServicePrincipal"}


def test_principal_type_is_mapped_from_azd() -> None:
    """Without the mapping principalType stays 'User', and azd signed in as a service principal fails
    every developer role assignment with UnmatchedPrincipalType."""
    parameters = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    assert "principalType" in parameters, "main.parameters.json does not map principalType"
    value = parameters["principalType"]["value"]
    mapping = re.fullmatch(r"\$\{AZURE_PRINCIPAL_TYPE(?:=(?P<default>[A-Za-z]+))?\}", value)
    assert mapping, f"principalType is {value!r}, not azd's AZURE_PRINCIPAL_TYPE"
    decorators = {d["type"]: d.get("argument") for d in main()["parameters"]["principalType"]["decorators"]}
    allowed = set(decorators["allowed"])
    assert allowed >= AZD_PRINCIPAL_TYPES, f"@allowed {sorted(allowed)} misses a type azd sets"
    assert mapping.group("default") is None or mapping.group("default") in allowed
    developer = resource_body(main()["modules"]["developerRoles"])
    assert developer["params"]["principalType"] == "principalType", "the developer's roles ignore the mapped type"


# --- metrics schema ------------------------------------------------------------------------------

MONITORING_READER_ROLE_ID = "43d0d8ad-25c7-4714-9337-8ba259a9fe05"  # built-in-roles/monitor.md: */read


def test_metrics_schema_choices_are_the_ones_the_code_queries() -> None:
    decorators = {d["type"]: d.get("argument") for d in main()["parameters"]["costMetricsSchema"]["decorators"]}
    assert set(decorators["allowed"]) == set(QUERY_FILES)
    # chosen with `azd env set COST_METRICS_SCHEMA ...`, the setting's own name
    parameters = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    default = {s.name: s.default for s in SETTINGS}["COST_METRICS_SCHEMA"]
    assert parameters["costMetricsSchema"]["value"] == f"${{COST_METRICS_SCHEMA={default}}}"


@pytest.mark.parametrize(
    ("schema", "resource_id", "reads_component"),
    [
        ("AppMetrics", "", False),  # the workspace: Log Analytics Reader there is enough
        ("customMetrics", ("monitoring", "outputs", "applicationInsightsId"), True),
    ],
)
def test_metrics_schema_sets_the_query_settings_and_the_component_role(
    schema: str, resource_id: Any, reads_component: bool
) -> None:
    """customMetrics is queried on the Application Insights component (query_resource): the app
    needs its resource id and read on the component; AppMetrics needs neither."""
    template = main()
    mode = {"costMetricsSchema": schema}
    settings = {entry["name"]: evaluate(template, entry["value"], mode) for entry in main_app_settings()}
    assert settings["COST_METRICS_SCHEMA"] == schema
    assert settings["COST_METRICS_RESOURCE_ID"] == resource_id
    assert "applicationInsightsId" in parse(INFRA / "app" / "monitoring.bicep")["outputs"]
    for module in ("appRoles", "developerRoles"):
        params = resource_body(template["modules"][module])["params"]
        assert evaluate(template, params["queriesApplicationInsights"], mode) is reads_component, module
    rbac = app_module("rbac")
    reads = rbac["resources"]["readsApplicationInsights"]
    assert reads["config"]["condition"] == "queriesApplicationInsights"
    assert rbac["parameters"]["queriesApplicationInsights"]["default"] is False
    body = resource_body(reads)
    assert body["scope"] == "applicationInsights"
    role = function_call(body["properties"]["roleDefinitionId"], "subscription_resource_id")
    assert role is not None and rbac["variables"][role["resource_name_1"]]["value"] == MONITORING_READER_ROLE_ID


# --- deployment order ----------------------------------------------------------------------------


def _refers_to(node: Any, name: str) -> bool:
    return any(accessor_path(value)[:1] == [name] for value in walk(node) if accessor_path(value))


def test_function_app_is_created_after_its_role_assignments() -> None:
    """Key Vault references resolve (and the host reaches its storage) with the app's identity as
    soon as the app exists; created in parallel with its roles, the first resolution fails."""
    modules = main()["modules"]
    api = resource_body(modules["api"])
    waits = "appRoles" in api.get("dependsOn", []) or _refers_to(api["params"], "appRoles")
    assert waits, "module api neither depends on appRoles nor uses one of its outputs"
    assert not _refers_to(resource_body(modules["appRoles"]), "api"), "appRoles must not wait for api (cycle)"


# --- outputs and roles ---------------------------------------------------------------------------


def test_outputs_are_upper_snake_and_not_secret() -> None:
    outputs = main()["outputs"]
    assert outputs
    for name, output in outputs.items():
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*", name), name
        assert not any(function_call(node, fn) for node in walk(output) for fn in ("list_keys", "list_secrets")), name
    for path in bicep_files():
        text = path.read_text(encoding="utf-8")
        for line in text.splitlines():
            if line.startswith("output "):
                assert "listSecrets" not in line and "listKeys" not in line, f"{path.name}: {line}"
                assert "@secure" not in line


def test_role_assignments_use_named_role_ids_and_guid_names() -> None:
    found = 0
    for path in bicep_files():
        template = parse(path)
        for name, resource in resources_of_type(template, "Microsoft.Authorization/roleAssignments").items():
            found += 1
            body = resource_body(resource)
            guid = function_call(body["name"], "guid")
            assert guid is not None, f"{path.name}:{name} name is not guid(...)"
            role = body["properties"]["roleDefinitionId"]
            if isinstance(role, str):  # a custom role's definition id, handed in as a parameter
                role_var = role
                assert role_var in template["parameters"], f"{path.name}:{name}: role id {role_var!r} not a parameter"
            else:  # a built-in role, by its id in a named variable
                call = function_call(role, "subscription_resource_id")
                assert call is not None, f"{path.name}:{name}: roleDefinitionId is not subscriptionResourceId(...)"
                role_var = call["resource_name_1"]
                assert role_var in template["variables"], f"{path.name}:{name}: role id not a named variable"
                assert re.fullmatch(r"[0-9a-f-]{36}", template["variables"][role_var]["value"])
            if "scope" in body:
                scope = accessor_path(guid["base_string"])
                assert scope == [body["scope"], "id"], f"{path.name}:{name}: guid must start with its scope"
            else:  # assigned on the resource group the module deploys to
                assert _is_resource_group_id(guid["base_string"]), f"{path.name}:{name}: guid must start with its scope"
            assert guid["extra_string_2"] == role_var
    assert found >= 8


# Built-in roles broader than anything the app does (MicrosoftDocs/azure-docs
# articles/role-based-access-control/built-in-roles/privileged.md, integration.md).
BROAD_ROLE_IDS = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
    "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
    "acdd72a7-3385-48ef-bd42-f606fba81ae7": "Reader",
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9": "User Access Administrator",
    "f58310d9-a9f6-439a-9e8d-f62e7b41a168": "Role Based Access Control Administrator",
    "09976791-48a7-449e-bb21-39d1a415f350": "Communication and Email Service Owner",  # also ListKeys, RegenerateKey
}
# What Microsoft documents for a custom role that sends email through Communication Services with
# Entra ID (MicrosoftDocs/azure-docs articles/communication-services/quickstarts/email/send-email-smtp/
# includes/smtp-authentication-customrole.md, ms.date 2025-03-18). Nothing else: no key access.
DOCUMENTED_SEND_ACTIONS = [
    "Microsoft.Communication/CommunicationServices/Read",
    "Microsoft.Communication/CommunicationServices/Write",
    "Microsoft.Communication/EmailServices/write",
]


def test_no_broad_built_in_role_is_used() -> None:
    for path in bicep_files():
        text = path.read_text(encoding="utf-8").lower()
        used = [role for role_id, role in BROAD_ROLE_IDS.items() if role_id in text]
        assert not used, f"{path.name} uses {used}"


def _is_resource_group_id(node: Any) -> bool:
    """`resourceGroup().id`."""
    operands = node.get("operator", {}).get("operands", {}) if isinstance(node, dict) else {}
    return function_call(operands.get("operand_1"), "resource_group") is not None and operands.get("operand_2") == "id"


def test_email_is_sent_with_a_custom_role_holding_only_the_send_actions() -> None:
    communication = app_module("communication")
    [(name, resource)] = resources_of_type(communication, "Microsoft.Authorization/roleDefinitions").items()
    body = resource_body(resource)
    guid = function_call(body["name"], "guid")
    assert guid is not None and _is_resource_group_id(guid["base_string"])
    properties = body["properties"]
    assert properties["type"] == "CustomRole"
    [scope] = properties["assignableScopes"]
    assert _is_resource_group_id(scope), "assignable in this resource group only"
    [permission] = properties["permissions"]
    actions = communication["variables"][permission["actions"]]["value"]
    assert actions == DOCUMENTED_SEND_ACTIONS
    assert permission["notActions"] == permission["dataActions"] == permission["notDataActions"] == []
    assert "uniqueString(resourceGroup().id)" in properties["roleName"], "role names are unique per tenant"
    # communication.bicep hands its id to both role modules; rbac.bicep assigns it on the Communication Service
    output = function_call(communication["outputs"]["emailSenderRoleDefinitionId"]["value"], "subscription_resource_id")
    assert output is not None and accessor_path(output["resource_name_1"]) == [name, "name"]
    for module in ("appRoles", "developerRoles"):
        params = resource_body(main()["modules"][module])["params"]
        assert accessor_path(params["emailSenderRoleDefinitionId"]) == [
            "communication", "outputs", "emailSenderRoleDefinitionId"
        ], module
    sends = resource_body(app_module("rbac")["resources"]["sendsEmail"])
    assert sends["scope"] == "communicationService"
    assert sends["properties"]["roleDefinitionId"] == "emailSenderRoleDefinitionId"


def test_deployments_are_listed_with_a_custom_role_holding_only_the_read_action() -> None:
    ai = app_module("ai")
    [(name, resource)] = resources_of_type(ai, "Microsoft.Authorization/roleDefinitions").items()
    properties = resource_body(resource)["properties"]
    assert properties["type"] == "CustomRole" and _is_resource_group_id(properties["assignableScopes"][0])
    [permission] = properties["permissions"]
    # The actions ARM checks for the deployments list (shared/costs/deployments.py) and the account's token metrics
    # (shared/meters/read.py, Metrics - List); nothing else.
    assert permission["actions"] == [
        "Microsoft.CognitiveServices/accounts/deployments/read",
        "Microsoft.Insights/metrics/read",
    ]
    assert permission["notActions"] == permission["dataActions"] == permission["notDataActions"] == []
    output = function_call(ai["outputs"]["modelAccountReaderRoleDefinitionId"]["value"], "subscription_resource_id")
    assert output is not None and accessor_path(output["resource_name_1"]) == [name, "name"]
    for module in ("appRoles", "developerRoles"):
        params = resource_body(main()["modules"][module])["params"]
        assert accessor_path(params["modelAccountReaderRoleDefinitionId"]) == [
            "ai", "outputs", "modelAccountReaderRoleDefinitionId"
        ], module
        assert accessor_path(params["aiAccountName"]) == ["ai", "outputs", "name"], module
    reads = resource_body(app_module("rbac")["resources"]["readsModelDeployments"])
    assert reads["scope"] == "aiAccount"
    assert reads["properties"]["roleDefinitionId"] == "modelAccountReaderRoleDefinitionId"


def test_the_bill_is_read_with_cost_management_reader_on_the_resource_group_only() -> None:
    rbac = app_module("rbac")
    body = resource_body(rbac["resources"]["readsBill"])
    assert "scope" not in body, "the module's resource group: the model account's (BILL_CHECK_SCOPE default)"
    assert rbac["variables"]["costManagementReaderRoleId"]["value"] == "72fafb9e-0641-4937-9268-a91bfd8191a3"
    defaults = {s.name: s.default for s in SETTINGS}
    assert defaults["BILL_CHECK_SCOPE"] == "resourceGroup"


def test_storage_is_identity_only() -> None:
    storage = resource_body(app_module("storage")["resources"]["storage"])["properties"]
    assert storage["allowSharedKeyAccess"] is False
    assert storage["allowBlobPublicAccess"] is False
    deployment = resource_body(app_module("api")["resources"]["functionApp"])["properties"]["functionAppConfig"]
    assert deployment["deployment"]["storage"]["authentication"]["type"] == "UserAssignedIdentity"
    for module, resource, flag in [
        ("monitoring", "applicationInsights", ("properties", "DisableLocalAuth")),
        ("ai", "account", ("properties", "disableLocalAuth")),
    ]:
        body = resource_body(app_module(module)["resources"][resource])
        assert body[flag[0]][flag[1]] is True, f"{module}.{resource}"


def test_azure_yaml_deploys_the_root_as_a_python_function_app() -> None:
    text = (ROOT / "azure.yaml").read_text(encoding="utf-8")
    assert re.search(r"^\s+project:\s*\.\s*$", text, re.M)
    assert re.search(r"^\s+language:\s*python\s*$", text, re.M)
    assert re.search(r"^\s+host:\s*function\s*$", text, re.M)
    # the service name azd deploys to is the tag on the function app
    service = re.search(r"^services:\s*\n\s+(\S+):", text, re.M)
    assert service is not None
    tags = resource_body(app_module("api")["resources"]["functionApp"])["tags"]
    assert f"'azd-service-name': '{service.group(1)}'" in json.dumps(tags) or service.group(1) in json.dumps(tags)
