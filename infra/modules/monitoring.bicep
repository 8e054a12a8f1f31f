// Application Insights on a Log Analytics workspace: the Container Apps environment's own when it
// is given (the alert query reads ContainerAppConsoleLogs, which only that workspace holds), else
// a new one.
param location string
param tags object
param workspaceName string
param appInsightsName string
@description('Resource ID of an existing workspace; empty creates one.')
param existingWorkspaceId string

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = if (empty(existingWorkspaceId)) {
  name: workspaceName
  location: location
  tags: tags
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 30
  }
}

var workspaceId = empty(existingWorkspaceId) ? workspace.id : existingWorkspaceId

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspaceId
    // Telemetry only with an Entra token (the app's identity has Monitoring Metrics Publisher).
    DisableLocalAuth: true
  }
}

output workspaceId string = workspaceId
output appInsightsId string = appInsights.id
output appInsightsName string = appInsights.name
output appInsightsConnectionString string = appInsights.properties.ConnectionString
