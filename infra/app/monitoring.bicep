// Metrics store and cost tables: a Log Analytics workspace, workspace-based Application Insights
// that accepts APIM's custom metrics with dimensions, the custom tables the app uploads to and one
// data collection rule (kind Direct: its own logs ingestion endpoint, no separate DCE) with a
// stream per table. Table columns and streams come from shared/logs/schemas/log_tables.json.
param logAnalyticsName string
param applicationInsightsName string
param dataCollectionRuleName string
param location string
param tags object = {}
param retentionInDays int = 30

@description('The "custom" section of shared/logs/schemas/log_tables.json: table name -> {stream, columns}.')
param logTables object

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
    features: {
      // Entra ID only: queries and ingestion with identities, never the workspace keys.
      disableLocalAuth: true
    }
  }
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: applicationInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    // APIM's token metrics carry dimensions (subscription, user, deployment): without this they are dropped.
    CustomMetricsOptedInType: 'WithDimensions'
    DisableLocalAuth: true
  }
}

resource customTables 'Microsoft.OperationalInsights/workspaces/tables@2022-10-01' = [for table in items(logTables): {
  parent: workspace
  name: table.key
  properties: {
    plan: 'Analytics'
    retentionInDays: retentionInDays
    schema: {
      name: table.key
      columns: table.value.columns
    }
  }
}]

resource dataCollectionRule 'Microsoft.Insights/dataCollectionRules@2023-03-11' = {
  name: dataCollectionRuleName
  location: location
  tags: tags
  kind: 'Direct'
  properties: {
    // One declaration per custom table, columns exactly as the code uploads them.
    streamDeclarations: {
      'Custom-TokenCostSummary_CL': {
        columns: logTables.TokenCostSummary_CL.columns
      }
      'Custom-SyntheticTraffic_CL': {
        columns: logTables.SyntheticTraffic_CL.columns
      }
      'Custom-BillReconciliation_CL': {
        columns: logTables.BillReconciliation_CL.columns
      }
      'Custom-MeterComparison_CL': {
        columns: logTables.MeterComparison_CL.columns
      }
    }
    destinations: {
      logAnalytics: [
        {
          name: 'workspace'
          workspaceResourceId: workspace.id
        }
      ]
    }
    dataFlows: [for table in items(logTables): {
      streams: [table.value.stream]
      destinations: ['workspace']
      transformKql: 'source'
      outputStream: table.value.stream
    }]
  }
  dependsOn: [customTables]
}

output logAnalyticsId string = workspace.id
output logAnalyticsName string = workspace.name
output logAnalyticsWorkspaceCustomerId string = workspace.properties.customerId
output applicationInsightsId string = applicationInsights.id
output applicationInsightsName string = applicationInsights.name
output dataCollectionRuleName string = dataCollectionRule.name
output dataCollectionRuleImmutableId string = dataCollectionRule.properties.immutableId
output logsIngestionEndpoint string = dataCollectionRule.properties.endpoints.logsIngestion
