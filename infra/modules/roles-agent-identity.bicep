// Deployed in the resource group of the agent apps' user-assigned identity (when they use one).
param identityName string
param principalId string

resource agentIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' existing = {
  name: identityName
}

// A full-spec PUT of an app that carries a user-assigned identity (for its Key Vault secret
// references) re-asserts that identity, which ARM authorizes as assign/action on it. Scoped to
// that one identity: the app can attach it, nothing else.
resource identityOperator 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: agentIdentity
  name: guid(agentIdentity.id, principalId, 'Managed Identity Operator')
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'f1a07417-d97a-45cb-824c-7a7467783830')
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
