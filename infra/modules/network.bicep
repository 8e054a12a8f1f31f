// A VNet for the Function App's outbound traffic (VNet integration) and, with deploySpireServer,
// the SPIRE server VM: the app reaches the server's API on its private IP only.
param name string
param location string
param tags object
param withSpireSubnet bool

var functionSubnetPrefix = '10.40.0.0/24'
var spireSubnetPrefix = '10.40.1.0/24'

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
            // Flex Consumption integrates only into a subnet delegated to Microsoft.App/environments.
            delegations: [{ name: 'flex', properties: { serviceName: 'Microsoft.App/environments' } }]
          }
        }
      ],
      withSpireSubnet ? [{ name: 'snet-spire', properties: { addressPrefix: spireSubnetPrefix } }] : []
    )
  }
}

output functionSubnetId string = '${vnet.id}/subnets/snet-functions'
output functionSubnetPrefix string = functionSubnetPrefix
output spireSubnetId string = withSpireSubnet ? '${vnet.id}/subnets/snet-spire' : ''
