// spire-autopilot for azd: `azd up` creates the resource group below and everything the product
// needs in it; the agent apps, their Container Apps environment and (unless deploySpireServer)
// the SPIRE server VM already exist and are only granted to the app's identity.
targetScope = 'subscription'

@minLength(1)
@maxLength(40)
@description('azd environment name; names every resource created here.')
param environmentName string

@minLength(1)
@description('Region of the resources created here (the Function App, vault, storage, alerts).')
param location string

@description('SPIFFE trust domain of the SPIRE server, e.g. aim.microsoft.com.')
param spireTrustDomain string

@description('Resource group of the agent Container Apps (tagged spire-autopilot=managed). The app gets Container Apps Contributor on it, nowhere else.')
param appsResourceGroupName string

@description('Resource ID of the Log Analytics workspace of the Container Apps environment (where ContainerAppConsoleLogs lands). Empty: a new workspace is created, and the alert sees only what is sent to it.')
param logAnalyticsWorkspaceId string = ''

@allowed(['grpc', 'run-command'])
@description('How the app reaches the SPIRE server: grpc (Server API, TCP + mTLS, needs spireServerAddress or deploySpireServer) or run-command (managed run-commands on the VM).')
param spireApi string = 'grpc'

@description('host:port of the SPIRE server API for grpc mode, reachable from the Function App subnet. Ignored with deploySpireServer (the new VM\'s private IP is used).')
param spireServerAddress string = ''

@description('Resource group of an existing SPIRE server VM (run-commands, and the admin SVID bootstrap). Ignored with deploySpireServer.')
param spireVmResourceGroupName string = ''

@description('Name of an existing SPIRE server VM. Ignored with deploySpireServer.')
param spireVmName string = ''

@description('Create the SPIRE server VM here (Docker, data disk, syslog to the workspace, DEBUG log level), in the VNet created here: leave functionSubnetId empty.')
param deploySpireServer bool = false

@description('deploySpireServer only: address prefixes the SPIRE agents connect from (the Container Apps environment\'s infrastructure subnet, peered or in the same VNet). Agents use the API port too; only admin_ids may use its admin API.')
param spireAgentSourcePrefixes array = []

@description('SSH public key of the SPIRE VM\'s admin user (deploySpireServer only).')
param spireVmSshPublicKey string = ''

@description('Resource ID of an existing subnet, delegated to Microsoft.App/environments, that reaches the SPIRE server. Empty: a new VNet is created (with the SPIRE VM\'s subnet when deploySpireServer).')
param functionSubnetId string = ''

@description('SPIFFE ID of the product\'s admin SVID; the server\'s admin_ids must list it. Empty: spiffe://<trust domain>/spire-autopilot/admin.')
param spireAdminSpiffeId string = ''

@description('Key Vault secret of the trust bundle (TRUST_BUNDLE_SECRET_NAME).')
param trustBundleSecretName string = 'spire-trust-bundle'

@description('Key Vault secret of the admin SVID for mTLS to the server (SPIRE_ADMIN_SVID_SECRET).')
param adminSvidSecretName string = 'spire-admin-svid'

@allowed(['function-key', 'entra'])
@description('How the alert webhook authenticates: function-key (the key sits in the action group\'s webhook URL, readable by whoever reads the action group) or entra (secure webhook; needs an app registration with the ActionGroupsSecureWebhook role).')
param alertAuth string = 'function-key'

@description('entra only: Application ID URI (or client id) of the app registration the secure webhook gets tokens for.')
param alertAudience string = ''

@description('entra only: object id of that app registration.')
param alertAppObjectId string = ''

@description('Resource ID of the user-assigned identity the agent apps use for their Key Vault secret references, if any: a full-spec PUT of such an app must be allowed to assign it (Managed Identity Operator on that identity only).')
param agentAppsIdentityId string = ''

@description('Wire what needs the deployed code: the Key Vault event subscription to keyVaultEvents and the alert rules\' action group. azd\'s postdeploy hook sets it and provisions again.')
param wireTriggers bool = false

var suffix = uniqueString(subscription().id, environmentName, location)
var tags = { 'azd-env-name': environmentName }
var adminId = empty(spireAdminSpiffeId) ? 'spiffe://${spireTrustDomain}/spire-autopilot/admin' : spireAdminSpiffeId

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  scope: rg
  name: 'identity'
  params: { name: 'id-spire-autopilot-${suffix}', location: location, tags: tags }
}

module network 'modules/network.bicep' = if (empty(functionSubnetId)) {
  scope: rg
  name: 'network'
  params: { name: 'vnet-spire-autopilot-${suffix}', location: location, tags: tags, withSpireSubnet: deploySpireServer }
}

// Cross-resource-group module names carry the suffix: two environments may share the apps' group.
// Module scopes must be known when the deployment starts, so the workspace's id is computed here
// rather than read from the monitoring module's outputs.
var workspaceName = 'log-spire-autopilot-${suffix}'
var workspaceId = empty(logAnalyticsWorkspaceId)
  ? '/subscriptions/${subscription().subscriptionId}/resourceGroups/rg-${environmentName}/providers/Microsoft.OperationalInsights/workspaces/${workspaceName}'
  : logAnalyticsWorkspaceId

var subnetId = empty(functionSubnetId) ? network.outputs.functionSubnetId : functionSubnetId

module monitoring 'modules/monitoring.bicep' = {
  scope: rg
  name: 'monitoring'
  params: {
    location: location
    tags: tags
    workspaceName: workspaceName
    appInsightsName: 'appi-spire-autopilot-${suffix}'
    existingWorkspaceId: logAnalyticsWorkspaceId
  }
}

module storage 'modules/storage.bicep' = {
  scope: rg
  name: 'storage'
  params: { name: 'stspire${take(suffix, 16)}', location: location, tags: tags }
}

module vault 'modules/keyvault.bicep' = {
  scope: rg
  name: 'keyvault'
  params: { name: 'kv-spire-${take(suffix, 13)}', location: location, tags: tags }
}

module spireServer 'modules/spire-vm.bicep' = if (deploySpireServer) {
  scope: rg
  name: 'spire-vm'
  params: {
    name: 'vm-spire-server'
    location: location
    tags: tags
    subnetId: deploySpireServer && empty(functionSubnetId) ? network.outputs.spireSubnetId : ''
    functionSubnetPrefix: deploySpireServer && empty(functionSubnetId) ? network.outputs.functionSubnetPrefix : ''
    agentSourcePrefixes: spireAgentSourcePrefixes
    sshPublicKey: spireVmSshPublicKey
    trustDomain: spireTrustDomain
    adminSpiffeId: adminId
    workspaceId: monitoring.outputs.workspaceId
  }
}

// Never empty, even without a VM: ARM resolves a skipped module's scope too.
var vmResourceGroup = deploySpireServer || empty(spireVmResourceGroupName) ? rg.name : spireVmResourceGroupName
var vmName = deploySpireServer ? 'vm-spire-server' : spireVmName
var serverAddress = spireApi != 'grpc' ? '' : deploySpireServer ? '${spireServer.outputs.privateIp}:8081' : spireServerAddress

module functionApp 'modules/functionapp.bicep' = {
  scope: rg
  name: 'functionapp'
  params: {
    name: 'func-spire-autopilot-${suffix}'
    planName: 'plan-spire-autopilot-${suffix}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    subnetId: subnetId
    appInsightsConnectionString: monitoring.outputs.appInsightsConnectionString
    spireTrustDomain: spireTrustDomain
    spireApi: spireApi
    spireServerAddress: serverAddress
    adminSvidSecretName: adminSvidSecretName
    spireAdminSpiffeId: adminId
    spireVmResourceGroup: vmResourceGroup
    spireVmName: vmName
    appsResourceGroup: appsResourceGroupName
    keyVaultUrl: vault.outputs.uri
    trustBundleSecretName: trustBundleSecretName
    logAnalyticsWorkspaceCustomerId: workspaceRoles.outputs.customerId
    alertAuth: alertAuth
    alertAudience: alertAudience
  }
  // The host reads its storage and deployment package as the identity from its first start.
  dependsOn: [storageRoles, appInsightsRoles]
}

// ---- Least-privilege role assignments, each in its own scope (see infra/README.md) ----

module storageRoles 'modules/roles-storage.bicep' = {
  scope: rg
  name: 'roles-storage'
  params: { storageAccountName: storage.outputs.name, principalId: identity.outputs.principalId }
}

module vaultRoles 'modules/roles-keyvault.bicep' = {
  scope: rg
  name: 'roles-keyvault'
  params: {
    vaultName: vault.outputs.name
    principalId: identity.outputs.principalId
    // ARM evaluates only the branch it takes, so reference() runs only when an identity is given.
    agentPrincipalId: empty(agentAppsIdentityId) ? '' : reference(agentAppsIdentityId, '2023-01-31').principalId
  }
}

module appInsightsRoles 'modules/roles-appinsights.bicep' = {
  scope: rg
  name: 'roles-appinsights'
  params: { appInsightsName: monitoring.outputs.appInsightsName, principalId: identity.outputs.principalId }
}

module workspaceRoles 'modules/roles-workspace.bicep' = {
  scope: resourceGroup(split(workspaceId, '/')[2], split(workspaceId, '/')[4])
  name: 'roles-workspace-${suffix}'
  params: { workspaceName: last(split(workspaceId, '/')), principalId: identity.outputs.principalId }
  dependsOn: [monitoring]
}

module appsRoles 'modules/roles-apps.bicep' = {
  scope: resourceGroup(appsResourceGroupName)
  name: 'roles-apps-${suffix}'
  params: { principalId: identity.outputs.principalId }
}

// A stand-in id when none is given: ARM resolves a skipped module's scope too.
var agentIdentityParts = split(
  empty(agentAppsIdentityId)
    ? '/subscriptions/${subscription().subscriptionId}/resourceGroups/rg-${environmentName}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/none'
    : agentAppsIdentityId,
  '/'
)

module agentIdentityRoles 'modules/roles-agent-identity.bicep' = if (!empty(agentAppsIdentityId)) {
  scope: resourceGroup(agentIdentityParts[2], agentIdentityParts[4])
  name: 'roles-agent-identity-${suffix}'
  params: { identityName: last(agentIdentityParts), principalId: identity.outputs.principalId }
}

module vmRoles 'modules/roles-vm.bicep' = if (!empty(vmName)) {
  scope: resourceGroup(vmResourceGroup)
  name: 'roles-vm-${suffix}'
  params: { vmName: vmName, principalId: identity.outputs.principalId }
  dependsOn: [spireServer]
}

// ---- Wiring that needs the deployed functions (second provision, from the postdeploy hook) ----

module alerts 'modules/alerts.bicep' = if (wireTriggers) {
  scope: rg
  name: 'alerts'
  params: {
    location: location
    tags: tags
    workspaceId: monitoring.outputs.workspaceId
    functionAppName: functionApp.outputs.name
    alertAuth: alertAuth
    alertAudience: alertAudience
    alertAppObjectId: alertAppObjectId
  }
}

module keyVaultEvents 'modules/eventgrid.bicep' = if (wireTriggers) {
  scope: rg
  name: 'keyvault-events'
  params: {
    location: location
    tags: tags
    vaultName: vault.outputs.name
    functionAppName: functionApp.outputs.name
    secretNames: empty(serverAddress) ? [trustBundleSecretName] : [trustBundleSecretName, adminSvidSecretName]
    storageAccountName: storage.outputs.name
    deadLetterContainerName: storage.outputs.deadLetterContainerName
  }
}

output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_APP_URL string = functionApp.outputs.url
output AZURE_KEY_VAULT_URL string = vault.outputs.uri
output SPIRE_SERVER_ADDRESS string = serverAddress
output SPIRE_ADMIN_SPIFFE_ID string = adminId
