// Key Vault's secret events on the trust bundle and the admin SVID, delivered to the app's
// keyVaultEvents Event Grid trigger (functions/keyVaultEvents.ts) so a version written elsewhere
// counts within seconds instead of at the next timer tick.
param location string
param tags object
param vaultName string
param functionAppName string
param secretNames array
param storageAccountName string
param deadLetterContainerName string

resource vault 'Microsoft.KeyVault/vaults@2022-07-01' existing = {
  name: vaultName
}

resource site 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource topic 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: 'evgt-${vaultName}'
  location: location
  tags: tags
  // Its own identity writes refused events to the dead-letter container (shared keys are off).
  identity: { type: 'SystemAssigned' }
  properties: {
    source: vault.id
    topicType: 'Microsoft.KeyVault.vaults'
  }
}

// Event Grid's dead-lettering writes the events the app refused, with the reason, as blobs.
resource deadLetterWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: account
  name: guid(account.id, topic.id, 'Storage Blob Data Contributor')
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'ba92f5b4-2d11-453d-a403-e96b0029c9fe')
    principalId: topic.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource delivery 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = {
  parent: topic
  name: 'spire-autopilot-trust-material'
  dependsOn: [deadLetterWriter]
  properties: {
    // The AzureFunction destination lets Event Grid fetch the extension key itself: no key in ARM.
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${site.id}/functions/keyVaultEvents'
        maxEventsPerBatch: 1
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: [
        'Microsoft.KeyVault.SecretNewVersionCreated'
        'Microsoft.KeyVault.SecretNearExpiry'
        'Microsoft.KeyVault.SecretExpired'
      ]
      advancedFilters: [{ operatorType: 'StringIn', key: 'subject', values: secretNames }]
    }
    // The timer covers whatever is lost: a short life and few attempts are enough.
    retryPolicy: { maxDeliveryAttempts: 10, eventTimeToLiveInMinutes: 60 }
    deadLetterWithResourceIdentity: {
      identity: { type: 'SystemAssigned' }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: { resourceId: account.id, blobContainerName: deadLetterContainerName }
      }
    }
  }
}
