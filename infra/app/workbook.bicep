// The cost dashboard. Its queries are the repository's KQL files: workbook.json is generated from
// shared/logs/kql/*.kql by tools/build_workbook.py (a test fails when it is stale), and every query in
// it is validated with Microsoft's KQL parser.
param location string
param tags object = {}
param logAnalyticsId string
param displayName string = 'APIM token costs'

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(resourceGroup().id, 'apim-token-costs-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: displayName
    category: 'workbook'
    sourceId: logAnalyticsId
    serializedData: loadTextContent('workbook.json')
  }
}

output id string = workbook.id
