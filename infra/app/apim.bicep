// The AI gateway: API Management with the inference-api (path inference/openai) running the
// repository's policy.xml (the same file the local gateway stand-in executes), the API diagnostic
// that lets the emit-token-metric policy write to Application Insights, the Foundry backend, and one
// subscription per persona subscription whose key goes straight into Key Vault (never an output).
param name string
param location string
param tags object = {}

@allowed(['Consumption', 'Developer', 'BasicV2', 'StandardV2'])
param sku string = 'BasicV2'
param publisherEmail string
param publisherName string

param applicationInsightsName string
param aiAccountName string
param aiEndpoint string
param metricNamespace string
param keyVaultName string

@description('{name, keySetting} per persona subscription.')
param trafficSubscriptions array

@description('Backend id the policy routes to ({backend-id} in policy.xml); the local stand-in uses the same id.')
param backendId string = 'foundry-backend'

// Built-in roles, by id.
var cognitiveServicesOpenAIUserRoleId = '5e0bd9bd-7b93-4f28-af87-19fc36ad61bd'
var monitoringMetricsPublisherRoleId = '3913510d-42f4-4e42-8a64-420c390055eb'

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource aiAccount 'Microsoft.CognitiveServices/accounts@2024-10-01' existing = {
  name: aiAccountName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource apim 'Microsoft.ApiManagement/service@2024-05-01' = {
  // checkov:skip=CKV_AZURE_107: the Basic v2 / Consumption tiers this sample defaults to have no VNet injection; the gateway is public by design and every call needs a subscription key.
  // checkov:skip=CKV_AZURE_174: the gateway is the public entry point for the traffic timer and the platform teams' clients; callers need a subscription key.
  name: name
  location: location
  tags: tags
  sku: {
    name: sku
    capacity: sku == 'Consumption' ? 0 : 1
  }
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    publisherEmail: publisherEmail
    publisherName: publisherName
  }
}

// policy.xml authenticates to the model with the gateway's identity.
resource apimCallsModel 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(aiAccount.id, apim.id, cognitiveServicesOpenAIUserRoleId)
  scope: aiAccount
  properties: {
    principalId: apim.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', cognitiveServicesOpenAIUserRoleId)
  }
}

// The logger writes telemetry and the token metrics with the gateway's identity (App Insights has local auth off).
resource apimPublishesMetrics 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, apim.id, monitoringMetricsPublisherRoleId)
  scope: applicationInsights
  properties: {
    principalId: apim.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisherRoleId)
  }
}

resource logger 'Microsoft.ApiManagement/service/loggers@2024-05-01' = {
  parent: apim
  name: 'appinsights-logger'
  properties: {
    loggerType: 'applicationInsights'
    description: 'Application Insights: token metrics of the inference-api'
    resourceId: applicationInsights.id
    isBuffered: true
    credentials: {
      connectionString: applicationInsights.properties.ConnectionString
      identityClientId: 'SystemAssigned'
    }
  }
  dependsOn: [apimPublishesMetrics]
}

resource backend 'Microsoft.ApiManagement/service/backends@2024-05-01' = {
  parent: apim
  name: backendId
  properties: {
    description: 'AI Foundry account (Azure OpenAI API)'
    url: '${aiEndpoint}openai'
    protocol: 'http'
    tls: {
      validateCertificateChain: true
      validateCertificateName: true
    }
  }
}

resource api 'Microsoft.ApiManagement/service/apis@2024-05-01' = {
  parent: apim
  name: 'inference-api'
  properties: {
    displayName: 'Inference API'
    description: 'Azure OpenAI inference API behind the token-metrics policy'
    path: 'inference/openai'
    protocols: ['https']
    apiType: 'http'
    subscriptionRequired: true
    // The openai SDK sends the key in the api-key header.
    subscriptionKeyParameterNames: {
      header: 'api-key'
      query: 'api-key'
    }
  }
}

// The operations the local gateway stand-in serves (standins/gateway/operations.py; a test keeps them equal).
var operations = [
  { name: 'chat-completions', method: 'POST', urlTemplate: '/deployments/{deployment-id}/chat/completions' }
  { name: 'completions', method: 'POST', urlTemplate: '/deployments/{deployment-id}/completions' }
  { name: 'embeddings', method: 'POST', urlTemplate: '/deployments/{deployment-id}/embeddings' }
]

resource apiOperations 'Microsoft.ApiManagement/service/apis/operations@2024-05-01' = [for operation in operations: {
  parent: api
  name: operation.name
  properties: {
    displayName: operation.name
    method: operation.method
    urlTemplate: operation.urlTemplate
    templateParameters: contains(operation.urlTemplate, '{deployment-id}') ? [
      {
        name: 'deployment-id'
        type: 'string'
        required: true
      }
    ] : []
  }
}]

// The repository's policy.xml, placeholders filled here as the local gateway fills them.
resource apiPolicy 'Microsoft.ApiManagement/service/apis/policies@2024-05-01' = {
  parent: api
  name: 'policy'
  properties: {
    format: 'rawxml'
    value: replace(replace(loadTextContent('../../policy.xml'), '{backend-id}', backend.name), '{metric-namespace}', metricNamespace)
  }
}

// metrics: true is what lets azure-openai-emit-token-metric reach Application Insights. No bodies
// are logged: prompts stay out of telemetry.
resource apiDiagnostics 'Microsoft.ApiManagement/service/apis/diagnostics@2024-05-01' = {
  parent: api
  name: 'applicationinsights'
  properties: {
    loggerId: logger.id
    metrics: true
    alwaysLog: 'allErrors'
    httpCorrelationProtocol: 'W3C'
    verbosity: 'information'
    logClientIp: true
    sampling: {
      samplingType: 'fixed'
      percentage: 100
    }
  }
}

resource subscriptions 'Microsoft.ApiManagement/service/subscriptions@2024-05-01' = [for sub in trafficSubscriptions: {
  parent: apim
  name: sub.name
  properties: {
    displayName: sub.name
    scope: '/apis/${api.name}'
    state: 'active'
    allowTracing: false
  }
}]

// Each key goes to Key Vault under the name the app's Key Vault reference uses (main.bicep).
resource subscriptionKeys 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = [for (sub, i) in trafficSubscriptions: {
  // checkov:skip=CKV_AZURE_41: the secret mirrors an APIM subscription key, which does not expire; rotating means regenerating the key and redeploying, and an expiry date would only break the traffic timer silently.
  parent: vault
  name: replace(toLower(sub.keySetting), '_', '-')
  properties: {
    contentType: 'APIM subscription key (${sub.name})'
    value: subscriptions[i].listSecrets().primaryKey
  }
}]

output id string = apim.id
output name string = apim.name
output gatewayUrl string = apim.properties.gatewayUrl
