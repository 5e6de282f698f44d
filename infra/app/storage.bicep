// The function app's storage: host state (timer locks), the Flex Consumption deployment package
// and the costs progress table. Identity access only (allowSharedKeyAccess: false).
param name string
param location string
param tags object = {}
param deploymentContainerName string
param costStateTable string
param focusExportContainerName string

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: Flex Consumption without VNet integration reaches its storage over the public endpoint; access is Entra ID only (no shared keys), which is the control here.
  // checkov:skip=CKV_AZURE_59: same reason as CKV_AZURE_35: public network access stays on, shared-key and anonymous access are off.
  // checkov:skip=CKV_AZURE_206: host state, the package and the costs progress are all rebuilt by a redeploy; LRS is enough.
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobServices 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobServices
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

// The FOCUS export's daily CSV files (shared/focus/); the app's Storage Blob Data Owner on the account covers it.
// Type and properties: Azure/bicep-types-az generated/storage/microsoft.storage/2023-05-01/types.md (containers, publicAccess).
resource focusExportContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobServices
  name: focusExportContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource tableServices 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource costProgress 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = {
  parent: tableServices
  name: costStateTable
}

output id string = storage.id
output name string = storage.name
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output tableEndpoint string = storage.properties.primaryEndpoints.table
output focusExportContainerName string = focusExportContainer.name
