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

output id string = account.id
output name string = account.name
output endpoint string = account.properties.endpoint
