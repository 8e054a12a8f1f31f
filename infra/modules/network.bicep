// A VNet for the Function App's outbound traffic (VNet integration) and, with deploySpireServer,
// the SPIRE server VM: the app reaches the server's API on its private IP only.
param name string
param location string
param tags object
param withSpireSubnet bool

var functionSubnetPrefix = '10.40.0.0/24'
var spireSubnetPrefix = '10.40.1.0/24'

// New VNets get no default outbound access: the app reaches storage, Key Vault and ARM, and the
// VM pulls Docker and the SPIRE image, through one NAT gateway with a static public IP.
resource outboundIp 'Microsoft.Network/publicIPAddresses@2024-05-01' = {
  name: 'pip-${name}-nat'
  location: location
  tags: tags
  sku: { name: 'Standard' }
  properties: { publicIPAllocationMethod: 'Static' }
}

resource nat 'Microsoft.Network/natGateways@2024-03-01' = {
  name: 'nat-${name}'
  location: location
  tags: tags
  sku: { name: 'Standard' }
  properties: { publicIpAddresses: [{ id: outboundIp.id }] }
}

resource vnet 'Microsoft.Network/virtualNetworks@2024-05-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    addressSpace: { addressPrefixes: ['10.40.0.0/16'] }
    subnets: concat(
      [
        {
          name: 'snet-functions'
          properties: {
            addressPrefix: functionSubnetPrefix
            natGateway: { id: nat.id }
            // Flex Consumption integrates only into a subnet delegated to Microsoft.App/environments.
            delegations: [{ name: 'flex', properties: { serviceName: 'Microsoft.App/environments' } }]
          }
        }
      ],
      withSpireSubnet
        ? [{ name: 'snet-spire', properties: { addressPrefix: spireSubnetPrefix, natGateway: { id: nat.id } } }]
        : []
    )
  }
}

output functionSubnetId string = '${vnet.id}/subnets/snet-functions'
output functionSubnetPrefix string = functionSubnetPrefix
output spireSubnetId string = withSpireSubnet ? '${vnet.id}/subnets/snet-spire' : ''
