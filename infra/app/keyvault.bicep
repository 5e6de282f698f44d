// Key Vault for the personas' APIM subscription keys (written by apim.bicep, read by the app
// through Key Vault references). RBAC only: no access policies.
param name string
param location string
param tags object = {}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_42: recoverable means purge protection on, which CKV_AZURE_110 explains is off on purpose; soft delete (7 days) is on.
  // checkov:skip=CKV_AZURE_109: the Functions platform resolves Key Vault references from outside any VNet here (no VNet integration), so the firewall stays open; access is RBAC-only.
  // checkov:skip=CKV_AZURE_189: same reason as CKV_AZURE_109.
  // checkov:skip=CKV_AZURE_110: `azd down --purge` must be able to purge the vault so the environment can be re-created under its name; the secrets it holds are re-derived from APIM on every deploy.
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

output id string = vault.id
output name string = vault.name
output uri string = vault.properties.vaultUri
