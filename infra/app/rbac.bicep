// Data roles for exactly what the code calls, nothing broader; each scoped to the one resource it
// is about. Used twice: for the app's identity and (optionally) for the developer, so `func start`
// against Azure works with the developer's own sign-in.
param principalId string
@allowed(['User', 'ServicePrincipal'])
param principalType string
param logAnalyticsName string
param dataCollectionRuleName string
param applicationInsightsName string
param storageAccountName string
param keyVaultName string
param communicationServiceName string

@description('The model account (ai.bicep) whose deployments and token metrics the costs timer reads (COST_MODEL_ACCOUNTS).')
param aiAccountName string

@description('Role definition id of the model account reader role (ai.bicep): only deployments/read and metrics/read.')
param modelAccountReaderRoleDefinitionId string

@description('Role definition id of the email sender role (communication.bicep): only the actions that send.')
param emailSenderRoleDefinitionId string

@description('The app identity also runs the Functions host: host storage, deployment package and telemetry.')
param isFunctionApp bool

@description('The costs timer queries customMetrics on the Application Insights component (COST_METRICS_SCHEMA=customMetrics).')
param queriesApplicationInsights bool = false

// Built-in roles, by id.
var logAnalyticsReaderRoleId = '73c42c96-874c-492b-b04d-ab87d138a893'
var monitoringReaderRoleId = '43d0d8ad-25c7-4714-9337-8ba259a9fe05'
var monitoringMetricsPublisherRoleId = '3913510d-42f4-4e42-8a64-420c390055eb'
var storageTableDataContributorRoleId = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
var storageBlobDataOwnerRoleId = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var keyVaultSecretsUserRoleId = '4633458b-17de-408a-b874-0445c86b69e6'
var costManagementReaderRoleId = '72fafb9e-0641-4937-9268-a91bfd8191a3'

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: logAnalyticsName
}

resource dataCollectionRule 'Microsoft.Insights/dataCollectionRules@2023-03-11' existing = {
  name: dataCollectionRuleName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource communicationService 'Microsoft.Communication/communicationServices@2023-04-01' existing = {
  name: communicationServiceName
}

resource aiAccount 'Microsoft.CognitiveServices/accounts@2024-10-01' existing = {
  name: aiAccountName
}

// costs timer: lists the account's deployments through ARM (shared/costs/deployments.py) and reads its token
// metrics for the bypass check (shared/meters/) with the custom role holding only
// Microsoft.CognitiveServices/accounts/deployments/read and Microsoft.Insights/metrics/read (ai.bicep), on that
// account only.
resource readsModelDeployments 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(aiAccount.id, principalId, modelAccountReaderRoleDefinitionId)
  scope: aiAccount
  properties: {
    principalId: principalId
    principalType: principalType
    roleDefinitionId: modelAccountReaderRoleDefinitionId
  }
}

// costs timer, bill check (shared/billing/): Cost Management's Query API on this resource group, the model
// account's (BILL_CHECK_SCOPE=resourceGroup). Cost Management Reader is the role Microsoft documents for reading
// cost data at a scope ("Cost Management Reader: Can view cost data and configuration", MicrosoftDocs/azure-docs
// articles/cost-management-billing/costs/assign-access-acm-data.md; its actions: articles/role-based-access-control/
// built-in-roles/management-and-governance.md): Microsoft.CostManagement/*/read and Consumption reads, plus
// Microsoft.Support/* (support tickets). No narrower documented role exists; it is assigned on this one resource
// group, not the subscription (BILL_CHECK_SCOPE=subscription needs it on the subscription, outside this template).
resource readsBill 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, principalId, costManagementReaderRoleId)
  properties: {
    principalId: principalId
    principalType: principalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', costManagementReaderRoleId)
  }
}

// costs timer: KQL over AppMetrics and TokenCostSummary_CL (LogsQueryClient).
resource readsWorkspace 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workspace.id, principalId, logAnalyticsReaderRoleId)
  scope: workspace
  properties: {
    principalId: principalId
    principalType: principalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', logAnalyticsReaderRoleId)
  }
}

// costs timer in customMetrics mode: KQL on the Application Insights component itself
// (LogsQueryClient.query_resource, POST /v1/{resourceId}/query). A resource-context query needs
// Microsoft.Insights/logs/<table>/read on the resource, "usually granted from a role that includes
// */read" (MicrosoftDocs/azure-docs articles/azure-monitor/logs/manage-access.md, "Resource
// permissions"); Monitoring Reader is */read and nothing that writes
// (articles/role-based-access-control/built-in-roles/monitor.md). Only in that mode.
resource readsApplicationInsights 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (queriesApplicationInsights) {
  name: guid(applicationInsights.id, principalId, monitoringReaderRoleId)
  scope: applicationInsights
  properties: {
    principalId: principalId
    principalType: principalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringReaderRoleId)
  }
}

// both timers: uploads through the DCR (LogsIngestionClient).
resource publishesToRule 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(dataCollectionRule.id, principalId, monitoringMetricsPublisherRoleId)
  scope: dataCollectionRule
  properties: {
    principalId: principalId
    principalType: principalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisherRoleId)
  }
}

// costs timer: progress entities in the CostProgress table (azure-data-tables). Scoped to the
// account because create_table_if_not_exists is a table-service call.
resource usesTables 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, storageTableDataContributorRoleId)
  scope: storage
  properties: {
    principalId: principalId
    principalType: principalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributorRoleId)
  }
}

// traffic timer: the personas' subscription keys (Key Vault references; the developer's local settings script).
resource readsSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, keyVaultSecretsUserRoleId)
  scope: vault
  properties: {
    principalId: principalId
    principalType: principalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUserRoleId)
  }
}

// alerts: sending email through Azure Communication Services with Entra ID (the custom email
// sender role, not Communication and Email Service Owner: that one also hands out the access keys).
resource sendsEmail 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(communicationService.id, principalId, emailSenderRoleDefinitionId)
  scope: communicationService
  properties: {
    principalId: principalId
    principalType: principalType
    roleDefinitionId: emailSenderRoleDefinitionId
  }
}

// Functions host: timer locks (blob leases) and the Flex Consumption deployment package.
resource hostStorage 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (isFunctionApp) {
  name: guid(storage.id, principalId, storageBlobDataOwnerRoleId)
  scope: storage
  properties: {
    principalId: principalId
    principalType: principalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwnerRoleId)
  }
}

// Functions host: its own telemetry to Application Insights with Entra ID (local auth is off).
resource publishesTelemetry 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (isFunctionApp) {
  name: guid(applicationInsights.id, principalId, monitoringMetricsPublisherRoleId)
  scope: applicationInsights
  properties: {
    principalId: principalId
    principalType: principalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisherRoleId)
  }
}
