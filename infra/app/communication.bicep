// Email for the alerts: an Email Communication Service with an Azure-managed domain
// (DoNotReply@<guid>.azurecomm.net, no DNS work) linked to a Communication Services resource, and
// the custom role that can send through it and do nothing else.
param communicationServiceName string
param emailServiceName string
param tags object = {}

@description('Where Communication Services keeps its data at rest.')
param dataLocation string = 'Europe'

resource emailService 'Microsoft.Communication/emailServices@2023-04-01' = {
  name: emailServiceName
  location: 'global'
  tags: tags
  properties: {
    dataLocation: dataLocation
  }
}

resource managedDomain 'Microsoft.Communication/emailServices/domains@2023-04-01' = {
  parent: emailService
  name: 'AzureManagedDomain'
  location: 'global'
  tags: tags
  properties: {
    domainManagement: 'AzureManaged'
    userEngagementTracking: 'Disabled'
  }
}

resource communicationService 'Microsoft.Communication/communicationServices@2023-04-01' = {
  name: communicationServiceName
  location: 'global'
  tags: tags
  properties: {
    dataLocation: dataLocation
    linkedDomains: [managedDomain.id]
  }
}

// The narrowest role that sends: Microsoft documents exactly these three actions for a custom role
// that sends email through Communication Services with Entra ID (MicrosoftDocs/azure-docs
// articles/communication-services/quickstarts/email/send-email-smtp/includes/smtp-authentication-customrole.md,
// ms.date 2025-03-18; https://learn.microsoft.com/azure/communication-services/quickstarts/email/send-email-smtp/smtp-authentication).
// The built-in Communication and Email Service Owner would also let the app read and regenerate the
// resource's access keys (ListKeys, RegenerateKey), which bypass Entra ID, and delete the resource.
// ACS has no data actions (articles/role-based-access-control/permissions/integration.md,
// Microsoft.Communication), so sending is authorized by these control-plane actions.
var emailSenderActions = [
  'Microsoft.Communication/CommunicationServices/Read'
  'Microsoft.Communication/CommunicationServices/Write'
  'Microsoft.Communication/EmailServices/write'
]

// Deployed at resource-group scope (Microsoft.Authorization/roleDefinitions@2022-04-01 is writable at
// ResourceGroup scope: Azure/bicep-types-az generated/authorization/microsoft.authorization/2022-04-01/types.md)
// and assignable only there. Custom role names are unique per tenant, hence the resource group's hash.
// Creating it needs Microsoft.Authorization/roleDefinitions/write: Owner or User Access Administrator.
resource emailSenderRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, 'communication-email-sender')
  properties: {
    roleName: 'Communication email sender (${uniqueString(resourceGroup().id)})'
    description: 'Send email through the Communication Services resources of resource group ${resourceGroup().name}; no access keys.'
    type: 'CustomRole'
    assignableScopes: [
      resourceGroup().id
    ]
    permissions: [
      {
        actions: emailSenderActions
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
  }
}

output communicationServiceName string = communicationService.name
// The form role assignments take for every role definition, built-in or custom
// (https://learn.microsoft.com/rest/api/authorization/role-assignments/create, roleDefinitionId).
output emailSenderRoleDefinitionId string = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', emailSenderRole.name)
output endpoint string = 'https://${communicationService.properties.hostName}'
output senderAddress string = 'DoNotReply@${managedDomain.properties.mailFromSenderDomain}'
