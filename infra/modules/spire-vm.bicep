// Optional (deploySpireServer): the SPIRE server VM the product operates. Docker runs the server
// container `spire-server`; its data dir sits on a managed data disk so the CA survives the
// container; its log reaches the workspace's Syslog table through the Azure Monitor Agent.
param name string
param location string
param tags object
param subnetId string
@description('Address prefix of the Function App subnet, where the product calls the admin API from.')
param functionSubnetPrefix string
@description('Address prefixes of the agents (the Container Apps environment\'s subnet): SPIRE agents attest and renew on the same port. The admin API on it answers only SVIDs listed in admin_ids.')
param agentSourcePrefixes array
param sshPublicKey string
param trustDomain string
param adminSpiffeId string
param workspaceId string
param adminUsername string = 'spireadmin'
param vmSize string = 'Standard_B2s'
param spireVersion string = '1.15.3'
param spirePort int = 8081
@description('The server\'s private address in the SPIRE subnet (10.40.1.0/24): static, since the app\'s SPIRE_SERVER_ADDRESS is set to it once and a deallocation must not move it.')
param privateIp string = '10.40.1.4'

var cloudInit = replace(
  replace(
    replace(
      replace(loadTextContent('../spire/cloud-init.yaml'), '__TRUST_DOMAIN__', trustDomain),
      '__ADMIN_SPIFFE_ID__',
      adminSpiffeId
    ),
    '__SPIRE_VERSION__',
    spireVersion
  ),
  '__SPIRE_PORT__',
  string(spirePort)
)

var allowFunctions = {
  name: 'spire-api-from-functions'
  properties: {
    priority: 100
    direction: 'Inbound'
    access: 'Allow'
    protocol: 'Tcp'
    sourceAddressPrefix: functionSubnetPrefix
    sourcePortRange: '*'
    destinationAddressPrefix: '*'
    destinationPortRange: string(spirePort)
  }
}

var allowAgents = {
  name: 'spire-api-from-agents'
  properties: {
    priority: 110
    direction: 'Inbound'
    access: 'Allow'
    protocol: 'Tcp'
    sourceAddressPrefixes: agentSourcePrefixes
    sourcePortRange: '*'
    destinationAddressPrefix: '*'
    destinationPortRange: string(spirePort)
  }
}

// The default AllowVnetInBound would open the API to the whole VNet: deny everyone else.
var denyOthers = {
  name: 'spire-api-deny-others'
  properties: {
    priority: 200
    direction: 'Inbound'
    access: 'Deny'
    protocol: '*'
    sourceAddressPrefix: '*'
    sourcePortRange: '*'
    destinationAddressPrefix: '*'
    destinationPortRange: string(spirePort)
  }
}

resource nsg 'Microsoft.Network/networkSecurityGroups@2024-05-01' = {
  name: 'nsg-${name}'
  location: location
  tags: tags
  properties: {
    securityRules: concat([allowFunctions], empty(agentSourcePrefixes) ? [] : [allowAgents], [denyOthers])
  }
}

resource nic 'Microsoft.Network/networkInterfaces@2024-05-01' = {
  name: 'nic-${name}'
  location: location
  tags: tags
  properties: {
    networkSecurityGroup: { id: nsg.id }
    ipConfigurations: [
      {
        name: 'primary'
        properties: { subnet: { id: subnetId }, privateIPAllocationMethod: 'Static', privateIPAddress: privateIp }
      }
    ]
  }
}

resource dataDisk 'Microsoft.Compute/disks@2024-03-02' = {
  name: 'disk-${name}-data'
  location: location
  tags: tags
  sku: { name: 'StandardSSD_LRS' }
  properties: {
    creationData: { createOption: 'Empty' }
    diskSizeGB: 16
  }
}

resource vm 'Microsoft.Compute/virtualMachines@2024-07-01' = {
  name: name
  location: location
  tags: tags
  // The Azure Monitor Agent authenticates as the VM.
  identity: { type: 'SystemAssigned' }
  properties: {
    hardwareProfile: { vmSize: vmSize }
    osProfile: {
      computerName: name
      adminUsername: adminUsername
      customData: base64(cloudInit)
      linuxConfiguration: {
        disablePasswordAuthentication: true
        ssh: { publicKeys: [{ path: '/home/${adminUsername}/.ssh/authorized_keys', keyData: sshPublicKey }] }
      }
    }
    storageProfile: {
      imageReference: {
        publisher: 'Canonical'
        offer: 'ubuntu-24_04-lts'
        sku: 'server'
        version: 'latest'
      }
      osDisk: { createOption: 'FromImage', managedDisk: { storageAccountType: 'StandardSSD_LRS' } }
      dataDisks: [
        {
          lun: 0
          createOption: 'Attach'
          managedDisk: { id: dataDisk.id }
          // Never deleted with the VM: the disk holds the CA and the datastore.
          deleteOption: 'Detach'
        }
      ]
    }
    networkProfile: { networkInterfaces: [{ id: nic.id }] }
  }
}

resource monitorAgent 'Microsoft.Compute/virtualMachines/extensions@2024-07-01' = {
  parent: vm
  name: 'AzureMonitorLinuxAgent'
  location: location
  properties: {
    publisher: 'Microsoft.Azure.Monitor'
    type: 'AzureMonitorLinuxAgent'
    typeHandlerVersion: '1.0'
    autoUpgradeMinorVersion: true
    enableAutomaticUpgrade: true
  }
}

// Syslog (the docker syslog driver writes the server's lines to the daemon facility) to the workspace.
resource dcr 'Microsoft.Insights/dataCollectionRules@2022-06-01' = {
  name: 'dcr-${name}-syslog'
  location: location
  tags: tags
  kind: 'Linux'
  properties: {
    dataSources: {
      syslog: [
        {
          name: 'spire-server'
          streams: ['Microsoft-Syslog']
          facilityNames: ['daemon']
          logLevels: ['Debug', 'Info', 'Notice', 'Warning', 'Error', 'Critical', 'Alert', 'Emergency']
        }
      ]
    }
    destinations: {
      logAnalytics: [{ name: 'workspace', workspaceResourceId: workspaceId }]
    }
    dataFlows: [{ streams: ['Microsoft-Syslog'], destinations: ['workspace'] }]
  }
}

resource dcrAssociation 'Microsoft.Insights/dataCollectionRuleAssociations@2022-06-01' = {
  scope: vm
  name: 'spire-server-syslog'
  properties: { dataCollectionRuleId: dcr.id }
  dependsOn: [monitorAgent]
}

output privateIp string = nic.properties.ipConfigurations[0].properties.privateIPAddress
output vmId string = vm.id
