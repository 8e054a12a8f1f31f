// Secrets only, on the product's own vault (created for it, holding only its trust material).
param vaultName string
param principalId string

resource vault 'Microsoft.KeyVault/vaults@2022-07-01' existing = {
  name: vaultName
}

// The app reads and writes new versions of the trust bundle and the admin SVID secrets. Secrets
// Officer is the smallest built-in role with set; per-secret scope is impossible at provision
// time (the secrets do not exist yet), and the vault holds nothing else.
resource secretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: vault
  name: guid(vault.id, principalId, 'Key Vault Secrets Officer')
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7')
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

@description('Principal id of the identity the agent apps read their Key Vault secret references with (empty: none given).')
param agentPrincipalId string = ''

// The agent apps' identity reads two kinds of secret through Container Apps' Key Vault
// references when a revision starts: the pinned trust bundle version, and the join token a
// deploy leaves in `join-token-<app>` (so no token is ever in an ARM request body). Reading is
// all it needs: Secrets User, on this vault only.
resource agentSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(agentPrincipalId)) {
  scope: vault
  name: guid(vault.id, agentPrincipalId, 'Key Vault Secrets User')
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '4633458b-17de-408a-b874-0445c86b69e6')
    principalId: agentPrincipalId
    principalType: 'ServicePrincipal'
  }
}
