// Deployed in the agent apps' resource group: the only Container Apps the product may change.
param principalId string

// Re-attestation GETs an app, lists its secrets, PUTs the full spec, reads and deactivates
// revisions. Container Apps Contributor is the built-in role with listSecrets and write; at
// this resource group, apps elsewhere stay out of reach.
resource containerApps 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, principalId, 'Container Apps Contributor')
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '358470bc-b998-42bd-ab17-a7e34c199c0f')
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
