// Read access to the Log Analytics workspace the health checks query (the Container Apps
// environment's, or the one created here), deployed in that workspace's resource group.
param workspaceName string
param principalId string

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: workspaceName
}

// Verification and the sweep query ContainerAppConsoleLogs and Syslog (the server's signings).
resource logsReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: workspace
  name: guid(workspace.id, principalId, 'Log Analytics Reader')
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '73c42c96-874c-492b-b04d-ab87d138a893')
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// LOG_ANALYTICS_WORKSPACE_ID is the workspace's customer id (a GUID), not its resource id.
output customerId string = workspace.properties.customerId
