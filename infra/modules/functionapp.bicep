// The product: a Function App on Flex Consumption (Linux, Node 22) running as the user-assigned
// identity, integrated into a subnet that reaches the SPIRE server's private address.
param name string
param planName string
param location string
param tags object
param identityId string
param identityClientId string
param storageAccountName string
param deploymentContainerUrl string
param subnetId string
param appInsightsConnectionString string

param spireTrustDomain string
param spireApi string
param spireServerAddress string
param adminSvidSecretName string
param spireAdminSpiffeId string
param spireVmResourceGroup string
param spireVmName string
param appsResourceGroup string
param keyVaultUrl string
param trustBundleSecretName string
param logAnalyticsWorkspaceCustomerId string
param alertAuth string
param alertAudience string

@description('Instances Flex may scale out to; the app serializes its SPIRE work itself, so a few suffice.')
param maximumInstanceCount int = 40

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: { name: 'FC1', tier: 'FlexConsumption' }
  properties: { reserved: true }
}

// The product's own settings (shared/config/settings.ts). Empty values are left out, so an
// optional setting is either set for a reason or absent (test/unit/infra-settings.test.ts checks
// every name against the config table).
var productSettings = {
  SPIRE_TRUST_DOMAIN: spireTrustDomain
  SPIRE_API: spireApi
  SPIRE_SERVER_ADDRESS: spireServerAddress
  SPIRE_ADMIN_SVID_SECRET: empty(spireServerAddress) ? '' : adminSvidSecretName
  SPIRE_ADMIN_SPIFFE_ID: spireAdminSpiffeId
  SPIRE_VM_RESOURCE_GROUP: empty(spireVmName) ? '' : spireVmResourceGroup
  SPIRE_VM_NAME: empty(spireVmResourceGroup) ? '' : spireVmName
  AZURE_SUBSCRIPTION_ID: subscription().subscriptionId
  AZURE_CREDENTIAL: 'managed-identity'
  AZURE_CLIENT_ID: identityClientId
  APPS_RESOURCE_GROUP: appsResourceGroup
  KEY_VAULT_URL: keyVaultUrl
  TRUST_BUNDLE_SECRET_NAME: trustBundleSecretName
  LOG_ANALYTICS_WORKSPACE_ID: logAnalyticsWorkspaceCustomerId
  ALERT_AUTH: alertAuth
  ALERT_AUDIENCE: alertAuth == 'entra' ? alertAudience : ''
  ALERT_TENANT_ID: alertAuth == 'entra' ? tenant().tenantId : ''
}

// What the Functions host reads: identity-based storage and Entra-authenticated telemetry.
var hostSettings = {
  AzureWebJobsStorage__accountName: storageAccountName
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD;ClientId=${identityClientId}'
}

var appSettings = map(
  filter(items(union(productSettings, hostSettings)), s => !empty(s.value)),
  s => { name: s.key, value: s.value }
)

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  // azd deploys the `api` service of azure.yaml to the site carrying this tag.
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identityId}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    virtualNetworkSubnetId: subnetId
    siteConfig: {
      minTlsVersion: '1.2'
      appSettings: appSettings
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: { type: 'UserAssignedIdentity', userAssignedIdentityResourceId: identityId }
        }
      }
      scaleAndConcurrency: { maximumInstanceCount: maximumInstanceCount, instanceMemoryMB: 2048 }
      runtime: { name: 'node', version: '22' }
    }
  }
}

output name string = site.name
output id string = site.id
output url string = 'https://${site.properties.defaultHostName}'
