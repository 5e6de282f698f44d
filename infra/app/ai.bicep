// AI Foundry account (kind AIServices) serving the Azure OpenAI API, with the model deployments the
// personas call. Entra ID only: APIM calls it with its managed identity (policy.xml).
param name string
param location string
param tags object = {}

@description('Deployments: {name, model, version, sku, capacity} (capacity in thousands of tokens per minute).')
param modelDeployments array

resource account 'Microsoft.CognitiveServices/accounts@2024-10-01' = {
  // checkov:skip=CKV_AZURE_134: APIM (no VNet in this deployment) reaches the account over its public endpoint; local auth is disabled, so only Entra ID callers holding a role get in.
  name: name
  location: location
  tags: tags
  kind: 'AIServices'
  sku: {
    name: 'S0'
  }
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    customSubDomainName: name
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
  }
}

// One at a time: the account rejects concurrent deployment operations.
@batchSize(1)
resource deployments 'Microsoft.CognitiveServices/accounts/deployments@2024-10-01' = [for deployment in modelDeployments: {
  parent: account
  name: deployment.name
  sku: {
    name: deployment.sku
    capacity: deployment.capacity
  }
  properties: {
    model: {
      format: 'OpenAI'
      name: deployment.model
      version: deployment.version
    }
  }
}]

// What the costs timer reads on the account through ARM, and nothing else: the deployment list
// (shared/costs/deployments.py, authorized by Microsoft.CognitiveServices/accounts/deployments/read) and the
// account's token metrics for the bypass check (shared/meters/read.py: Metrics - List, authorized by
// Microsoft.Insights/metrics/read, "Read metrics" in the Microsoft.Insights operations list). No built-in role is
// that narrow: Reader is */read everywhere in its scope, Monitoring Reader is */read too (plus support tickets),
// the Cognitive Services OpenAI roles add inference data actions, Cognitive Services Usages Reader has only
// Microsoft.CognitiveServices/locations/usages/read (MicrosoftDocs/azure-docs articles/role-based-access-control/
// built-in-roles/ai-machine-learning.md, .../monitor.md). Like the email sender role (communication.bicep): at
// resource-group scope, name unique per tenant via the group's hash (the seed is the first version's, so an
// existing role is updated in place); creating it needs roleDefinitions/write.
resource modelAccountReaderRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, 'model-deployments-reader')
  properties: {
    roleName: 'Model account reader (${uniqueString(resourceGroup().id)})'
    description: 'List the model deployments and read the token metrics of the AI accounts of resource group ${resourceGroup().name}; no inference, no keys.'
    type: 'CustomRole'
    assignableScopes: [
      resourceGroup().id
    ]
    permissions: [
      {
        actions: [
          'Microsoft.CognitiveServices/accounts/deployments/read'
          'Microsoft.Insights/metrics/read'
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
  }
}

output id string = account.id
output name string = account.name
output endpoint string = account.properties.endpoint
output modelAccountReaderRoleDefinitionId string = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', modelAccountReaderRole.name)
