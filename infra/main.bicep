// Everything `azd up` provisions for the APIM token-costs app: the AI gateway (API Management
// running ../policy.xml in front of an AI Foundry account), the metrics store (Log Analytics +
// workspace-based Application Insights), the cost tables and their data collection rule, the
// Flex Consumption function app with its storage and Key Vault, email, and the cost workbook.
// Names come from abbreviations.json + resourceToken; each can be overridden. Identities only:
// no shared keys, no local auth, no secret in an output.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; names the resource group and seeds resource names.')
param environmentName string

@minLength(1)
@description('Region of every resource (pick one where Flex Consumption and the model deployments below are offered).')
param location string

@description('Object id of the developer running azd; gets the same data roles as the app so `func start` works against Azure. Empty: none.')
param principalId string = ''

// azd computes AZURE_PRINCIPAL_TYPE at provision time from its login: 'User', or 'ServicePrincipal'
// after `azd auth login --client-id ...` (Azure/azure-dev cli/azd/pkg/infra/provisioning/
// current_principal_id_provider.go, bicep_provider.go; azd >= 1.17.1). main.parameters.json maps it,
// with 'User' for older azd, so provisioning as a service principal gets no UnmatchedPrincipalType.
@description('Type of principalId.')
@allowed(['User', 'ServicePrincipal'])
param principalType string = 'User'

// Overridable names (empty: abbreviation + resourceToken).
param resourceGroupName string = ''
param apimServiceName string = ''
param aiAccountName string = ''
param logAnalyticsName string = ''
param applicationInsightsName string = ''
param dataCollectionRuleName string = ''
param storageAccountName string = ''
param keyVaultName string = ''
param identityName string = ''
param appServicePlanName string = ''
param functionAppName string = ''
param communicationServiceName string = ''
param emailServiceName string = ''

@description('API Management tier: BasicV2 (default), StandardV2, Developer or Consumption.')
param apimSku string = 'BasicV2'
param apimPublisherEmail string = 'noreply@example.com'
param apimPublisherName string = 'APIM token costs'

@description('Metric namespace the policy emits the token metrics under ({metric-namespace} in policy.xml).')
param metricNamespace string = 'AzureOpenAI'

@description('Days the workspace keeps metrics and cost summaries.')
param logRetentionDays int = 30

// Models GA today and far from retirement (infra/model-retirements.json, from Microsoft's model
// retirement schedule, https://learn.microsoft.com/azure/foundry/openai/concepts/model-retirement-schedule;
// tests/infra/test_models.py fails when one is deprecated, retired or retires within 90 days).
// sku is the deployment type's SKU code (https://learn.microsoft.com/azure/foundry/foundry-models/concepts/deployment-types):
// the gpt-5.6 models have no regional Standard offer; Data Zone Standard keeps processing in the
// US or EU data zone, so pick a US or EU region for it (MicrosoftDocs/azure-ai-docs
// articles/foundry/foundry-models/includes/model-matrix/deployments-standard.md @ 0378dd85).
@description('Model deployments on the AI Foundry account: every deployment a persona calls; each model is in the price table and the retirement list (tests check all).')
param modelDeployments array = [
  { name: 'gpt-5.6-luna', model: 'gpt-5.6-luna', version: '2026-07-09', sku: 'GlobalStandard', capacity: 10 }
  { name: 'gpt-5.6-sol', model: 'gpt-5.6-sol', version: '2026-07-09', sku: 'GlobalStandard', capacity: 10 }
  { name: 'gpt-5.6-terra', model: 'gpt-5.6-terra', version: '2026-07-09', sku: 'DataZoneStandard', capacity: 10 }
]

@description('One APIM subscription per persona subscription: its id (the Subscription ID dimension) and the app setting holding its key (shared/traffic/personas.sample.json; a test keeps them equal).')
param trafficSubscriptions array = [
  { name: 'team-support', keySetting: 'TRAFFIC_KEY_TEAM_SUPPORT' }
  { name: 'team-research', keySetting: 'TRAFFIC_KEY_TEAM_RESEARCH' }
  { name: 'team-batch', keySetting: 'TRAFFIC_KEY_TEAM_BATCH' }
]

@description('App settings the alert rules file (ALERT_RULES_FILE) names for its recipient groups\' Teams, Slack and webhook URLs and webhook signing secrets: the sample names the finops group\'s Teams and Slack URLs. Each is a Key Vault reference to the secret of its name in lower case with \'-\' for \'_\' (alert-teams-finops-url) once alertChannelsInKeyVault is true, else empty (the channel is off).')
param alertChannelSettings array = ['ALERT_TEAMS_FINOPS_URL', 'ALERT_SLACK_FINOPS_URL']

@description('True once the secrets of alertChannelSettings are in the Key Vault (az keyvault secret set --vault-name <KEY_VAULT_NAME> --name alert-teams-finops-url --value https://...): the app then reads them as Key Vault references. A reference the platform cannot resolve stops the app at start, naming the setting.')
param alertChannelsInKeyVault bool = false

// Timer schedules (NCRONTAB, six fields, seconds first).
param trafficSchedule string = '0 */5 * * * *'
param costSchedule string = '0 */15 * * * *'

@description('Table storage table holding the costs progress.')
param costStateTable string = 'CostProgress'

@description('Blob container of the FOCUS export (each final UTC day\'s cost rows, one CSV a day), in the app\'s storage account.')
@minLength(3)
@maxLength(63)
param focusExportContainer string = 'focus-exports'

@description('BillingAccountId written in the FOCUS export (your EA enrollment or MCA billing profile); empty: each model account\'s subscription.')
param focusBillingAccountId string = ''

@description('Where the costs timer reads the token metrics: AppMetrics (the workspace) or customMetrics (the Application Insights component, queried resource-centric; the app and the developer then also get read on the component).')
@allowed(['AppMetrics', 'customMetrics'])
param costMetricsSchema string = 'AppMetrics'
var queriesApplicationInsights = costMetricsSchema == 'customMetrics'

var abbrs = loadJsonContent('abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }
var functionAppResolvedName = !empty(functionAppName) ? functionAppName : '${abbrs.webSitesFunctions}${resourceToken}'
var keyVaultResolvedName = !empty(keyVaultName) ? keyVaultName : '${abbrs.keyVaultVaults}${resourceToken}'
var deploymentContainerName = 'app-package-${take(functionAppResolvedName, 32)}-${take(resourceToken, 7)}'

// The single source of the custom tables the app uploads to (also read by the local stand-in and
// the KQL validator): each table's DCR stream and columns.
var logTables = loadJsonContent('../shared/logs/schemas/log_tables.json', '$.custom')

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: !empty(resourceGroupName) ? resourceGroupName : '${abbrs.resourcesResourceGroups}${environmentName}'
  location: location
  tags: tags
}

module identity 'app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: !empty(identityName) ? identityName : '${abbrs.managedIdentityUserAssignedIdentities}${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: !empty(logAnalyticsName) ? logAnalyticsName : '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    applicationInsightsName: !empty(applicationInsightsName) ? applicationInsightsName : '${abbrs.insightsComponents}${resourceToken}'
    dataCollectionRuleName: !empty(dataCollectionRuleName) ? dataCollectionRuleName : '${abbrs.insightsDataCollectionRules}${resourceToken}'
    location: location
    tags: tags
    retentionInDays: logRetentionDays
    logTables: logTables
  }
}

module storage 'app/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: !empty(storageAccountName) ? storageAccountName : '${abbrs.storageStorageAccounts}${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
    costStateTable: costStateTable
    focusExportContainerName: focusExportContainer
  }
}

module keyVault 'app/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: keyVaultResolvedName
    location: location
    tags: tags
  }
}

module ai 'app/ai.bicep' = {
  name: 'ai'
  scope: rg
  params: {
    name: !empty(aiAccountName) ? aiAccountName : '${abbrs.cognitiveServicesAccounts}${resourceToken}'
    location: location
    tags: tags
    modelDeployments: modelDeployments
  }
}

module apim 'app/apim.bicep' = {
  name: 'apim'
  scope: rg
  params: {
    name: !empty(apimServiceName) ? apimServiceName : '${abbrs.apiManagementService}${resourceToken}'
    location: location
    tags: tags
    sku: apimSku
    publisherEmail: apimPublisherEmail
    publisherName: apimPublisherName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    aiAccountName: ai.outputs.name
    aiEndpoint: ai.outputs.endpoint
    metricNamespace: metricNamespace
    trafficSubscriptions: trafficSubscriptions
    keyVaultName: keyVault.outputs.name
  }
}

module communication 'app/communication.bicep' = {
  name: 'communication'
  scope: rg
  params: {
    communicationServiceName: !empty(communicationServiceName) ? communicationServiceName : '${abbrs.communicationCommunicationServices}${resourceToken}'
    emailServiceName: !empty(emailServiceName) ? emailServiceName : '${abbrs.communicationEmailServices}${resourceToken}'
    tags: tags
  }
}

// The app's settings: the same names as shared/config.py (SETTINGS), local.settings.sample.json and
// the README table (tests/infra/test_infra.py keeps them in step). Values come from the resources where
// a resource decides them; the rest are the config defaults. One line per setting.
var appSettings = [
  { name: 'TRAFFIC_SCHEDULE', value: trafficSchedule }
  { name: 'COST_SCHEDULE', value: costSchedule }
  { name: 'GATEWAY_URL', value: apim.outputs.gatewayUrl }
  { name: 'OPENAI_API_VERSION', value: '2025-04-01-preview' }
  { name: 'TRAFFIC_PERSONAS_FILE', value: 'shared/traffic/personas.sample.json' }
  { name: 'TRAFFIC_SEED', value: '' }
  { name: 'TRAFFIC_REQUESTS_PER_RUN', value: '20' }
  { name: 'TRAFFIC_CONCURRENCY', value: '16' }
  { name: 'TRAFFIC_TIME_BUDGET_SECONDS', value: '240' }
  { name: 'TRAFFIC_REQUEST_TIMEOUT_SECONDS', value: '30' }
  { name: 'TRAFFIC_MAX_RETRIES', value: '2' }
  { name: 'TRAFFIC_FAILURE_WARN_RATIO', value: '0.05' }
  { name: 'TRAFFIC_INGESTION_STREAM', value: logTables.SyntheticTraffic_CL.stream }
  { name: 'LOGS_INGESTION_ENDPOINT', value: monitoring.outputs.logsIngestionEndpoint }
  { name: 'LOGS_INGESTION_RULE_ID', value: monitoring.outputs.dataCollectionRuleImmutableId }
  { name: 'LOG_ANALYTICS_WORKSPACE_ID', value: monitoring.outputs.logAnalyticsWorkspaceCustomerId }
  { name: 'LOG_ANALYTICS_ENDPOINT', value: 'https://api.loganalytics.io' }
  { name: 'COST_WINDOW_MINUTES', value: '60' }
  { name: 'COST_METRICS_SCHEMA', value: costMetricsSchema }
  { name: 'COST_METRICS_RESOURCE_ID', value: queriesApplicationInsights ? monitoring.outputs.applicationInsightsId : '' }
  { name: 'COST_INGESTION_DELAY_MINUTES', value: '15' }
  { name: 'COST_RECOMPUTE_WINDOWS', value: '3' }
  { name: 'COST_PRICE_TABLE', value: 'shared/costs/prices/catalog.json' }
  { name: 'COST_DEPLOYMENT_MAP', value: 'shared/costs/prices/deployments.json' }
  { name: 'COST_MODEL_ACCOUNTS', value: ai.outputs.id }
  // The cloud's own ARM endpoint (public: https://management.azure.com/).
  { name: 'AZURE_RESOURCE_MANAGER_ENDPOINT', value: environment().resourceManager }
  { name: 'COST_DCR_STREAM', value: logTables.TokenCostSummary_CL.stream }
  { name: 'COST_STATE_CONNECTION_STRING', value: '' }
  { name: 'COST_STATE_TABLE_ENDPOINT', value: storage.outputs.tableEndpoint }
  { name: 'COST_STATE_TABLE', value: costStateTable }
  { name: 'COST_UPLOAD_CHUNK_ROWS', value: '5000' }
  { name: 'COST_UPLOAD_ATTEMPTS', value: '3' }
  { name: 'COST_QUERY_ATTEMPTS', value: '3' }
  { name: 'COST_RETRY_DELAY_SECONDS', value: '5' }
  { name: 'BYPASS_METRICS_ATTEMPTS', value: '3' }
  { name: 'BYPASS_METRICS_BUDGET_SECONDS', value: '60' }
  { name: 'BYPASS_DCR_STREAM', value: logTables.MeterComparison_CL.stream }
  { name: 'BILL_CHECK_SCOPE', value: 'resourceGroup' }
  { name: 'BILL_CHECK_SETTLE_HOURS', value: '24' }
  { name: 'BILL_CHECK_DAYS', value: '3' }
  { name: 'BILL_CHECK_INTERVAL_HOURS', value: '24' }
  { name: 'BILL_CHECK_ATTEMPTS', value: '3' }
  { name: 'BILL_CHECK_BUDGET_SECONDS', value: '60' }
  { name: 'BILL_DCR_STREAM', value: logTables.BillReconciliation_CL.stream }
  { name: 'FOCUS_EXPORT_CONTAINER', value: storage.outputs.focusExportContainerName }
  { name: 'FOCUS_EXPORT_BLOB_ENDPOINT', value: storage.outputs.blobEndpoint }
  { name: 'FOCUS_EXPORT_DAYS', value: '3' }
  { name: 'FOCUS_BILLING_ACCOUNT_ID', value: focusBillingAccountId }
  { name: 'ALERT_RULES_FILE', value: 'shared/alerts/alerts.sample.json' }
  { name: 'ALERT_STATE_TABLE', value: 'AlertState' }
  { name: 'REPORT_PERIODS', value: 'weekly,monthly' }
  { name: 'ALERT_DELIVERY', value: 'acs' }
  { name: 'ALERT_EMAIL_FROM', value: communication.outputs.senderAddress }
  { name: 'ALERT_SMTP_HOST', value: '127.0.0.1' }
  { name: 'ALERT_SMTP_PORT', value: '587' }
  { name: 'ALERT_SMTP_USERNAME', value: '' }
  { name: 'ALERT_SMTP_PASSWORD', value: '' }
  { name: 'ALERT_SMTP_STARTTLS', value: 'true' }
  { name: 'ALERT_ACS_ENDPOINT', value: communication.outputs.endpoint }
  { name: 'ALERT_LEASE_SECONDS', value: '600' }
  { name: 'ALERT_DASHBOARD_URL', value: '' }
  { name: 'AZURE_CLIENT_ID', value: identity.outputs.clientId }
  { name: 'AZURE_CA_BUNDLE', value: '' }
]

// Each persona subscription's key, as a Key Vault reference resolved by the platform with the app's identity.
var trafficKeySettings = [for sub in trafficSubscriptions: {
  name: sub.keySetting
  value: '@Microsoft.KeyVault(VaultName=${keyVaultResolvedName};SecretName=${replace(toLower(sub.keySetting), '_', '-')})'
}]

// The alert channels' webhook URLs and signing secrets (secrets: never in a parameter file or an output), as Key Vault
// references once you wrote them to the vault; empty until then, which switches each channel off.
var alertChannelReferences = [for name in alertChannelSettings: {
  name: name
  value: '@Microsoft.KeyVault(VaultName=${keyVaultResolvedName};SecretName=${replace(toLower(name), '_', '-')})'
}]
var alertChannelsOff = [for name in alertChannelSettings: { name: name, value: '' }]
var alertChannelKeySettings = alertChannelsInKeyVault ? alertChannelReferences : alertChannelsOff

// The app is created after its roles: at creation the platform resolves the Key Vault references
// with the app's identity, and a failed resolution leaves the literal reference in the setting
// until the next re-fetch (every 24 hours, or a config change); host storage and the deployment
// package need their blob role too (https://learn.microsoft.com/azure/app-service/app-service-key-vault-references,
// "Rotation", "Troubleshooting"). Nothing in api's params references appRoles, so without
// dependsOn ARM deploys the two modules in parallel.
module api 'app/api.bicep' = {
  name: 'api'
  scope: rg
  dependsOn: [appRoles]
  params: {
    name: functionAppResolvedName
    planName: !empty(appServicePlanName) ? appServicePlanName : '${abbrs.webServerFarms}${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    appSettings: concat(appSettings, trafficKeySettings, alertChannelKeySettings)
  }
}

// Data roles for exactly what the code calls, for the app's identity and (optionally) the developer.
module appRoles 'app/rbac.bicep' = {
  name: 'app-roles'
  scope: rg
  params: {
    principalId: identity.outputs.principalId
    principalType: 'ServicePrincipal'
    isFunctionApp: true
    logAnalyticsName: monitoring.outputs.logAnalyticsName
    dataCollectionRuleName: monitoring.outputs.dataCollectionRuleName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    storageAccountName: storage.outputs.name
    keyVaultName: keyVault.outputs.name
    communicationServiceName: communication.outputs.communicationServiceName
    aiAccountName: ai.outputs.name
    modelAccountReaderRoleDefinitionId: ai.outputs.modelAccountReaderRoleDefinitionId
    emailSenderRoleDefinitionId: communication.outputs.emailSenderRoleDefinitionId
    queriesApplicationInsights: queriesApplicationInsights
  }
}

module developerRoles 'app/rbac.bicep' = if (!empty(principalId)) {
  name: 'developer-roles'
  scope: rg
  params: {
    principalId: principalId
    principalType: principalType
    isFunctionApp: false
    logAnalyticsName: monitoring.outputs.logAnalyticsName
    dataCollectionRuleName: monitoring.outputs.dataCollectionRuleName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    storageAccountName: storage.outputs.name
    keyVaultName: keyVault.outputs.name
    communicationServiceName: communication.outputs.communicationServiceName
    aiAccountName: ai.outputs.name
    modelAccountReaderRoleDefinitionId: ai.outputs.modelAccountReaderRoleDefinitionId
    emailSenderRoleDefinitionId: communication.outputs.emailSenderRoleDefinitionId
    queriesApplicationInsights: queriesApplicationInsights
  }
}

module workbook 'app/workbook.bicep' = {
  name: 'workbook'
  scope: rg
  params: {
    location: location
    tags: tags
    logAnalyticsId: monitoring.outputs.logAnalyticsId
  }
}

// azd environment values (UPPER_SNAKE); tools/write_local_settings.py turns them into
// local.settings.json for `func start` against Azure. Nothing secret here.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = api.outputs.name
output AZURE_CLIENT_ID string = identity.outputs.clientId
output GATEWAY_URL string = apim.outputs.gatewayUrl
output APIM_SERVICE_NAME string = apim.outputs.name
output AI_ENDPOINT string = ai.outputs.endpoint
output LOGS_INGESTION_ENDPOINT string = monitoring.outputs.logsIngestionEndpoint
output LOGS_INGESTION_RULE_ID string = monitoring.outputs.dataCollectionRuleImmutableId
output LOG_ANALYTICS_WORKSPACE_ID string = monitoring.outputs.logAnalyticsWorkspaceCustomerId
output COST_METRICS_APP_INSIGHTS_ID string = monitoring.outputs.applicationInsightsId
output COST_METRICS_SCHEMA string = costMetricsSchema
output COST_METRICS_RESOURCE_ID string = queriesApplicationInsights ? monitoring.outputs.applicationInsightsId : ''
output COST_STATE_TABLE_ENDPOINT string = storage.outputs.tableEndpoint
output COST_STATE_TABLE string = costStateTable
output KEY_VAULT_NAME string = keyVault.outputs.name
output KEY_VAULT_URI string = keyVault.outputs.uri
output COMMUNICATION_SERVICE_ENDPOINT string = communication.outputs.endpoint
output EMAIL_SENDER_ADDRESS string = communication.outputs.senderAddress
output WORKBOOK_ID string = workbook.outputs.id
