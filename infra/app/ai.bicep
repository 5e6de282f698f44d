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

// What the costs timer needs to list the deployments (shared/costs/deployments.py): ARM authorizes that GET
// with this one action. No built-in role is that narrow: Reader is */read everywhere in its scope, the
// Cognitive Services OpenAI roles add inference data actions, Cognitive Services Usages Reader has only
// Microsoft.CognitiveServices/locations/usages/read (MicrosoftDocs/azure-docs articles/role-based-access-control/
// built-in-roles/ai-machine-learning.md). Like the email sender role (communication.bicep): at resource-group
// scope, name unique per tenant via the group's hash; creating it needs roleDefinitions/write.
resource deploymentsReaderRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, 'model-deployments-reader')
  properties: {
    roleName: 'Model deployments reader (${uniqueString(resourceGroup().id)})'
    description: 'List the model deployments of the AI accounts of resource group ${resourceGroup().name}; no inference, no keys.'
    type: 'CustomRole'
    assignableScopes: [
      resourceGroup().id
    ]
    permissions: [
      {
        actions: [
          'Microsoft.CognitiveServices/accounts/deployments/read'
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
output deploymentsReaderRoleDefinitionId string = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', deploymentsReaderRole.name)
