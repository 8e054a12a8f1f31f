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
