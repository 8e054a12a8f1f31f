// Deployed in the SPIRE VM's resource group: managed run-commands on that one VM.
param vmName string
param principalId string

resource vm 'Microsoft.Compute/virtualMachines@2024-07-01' existing = {
  name: vmName
}

// Exactly what the run-command adapter calls: read the VM (its region), and create, poll and
// delete run-commands. Virtual Machine Contributor would also let the app resize, redeploy,
// delete or reimage the VM, detach the data disk holding the CA, install extensions (VMAccess
// resets SSH keys) and change its network; none of that is needed. A run-command still runs as
// root inside the VM, so this limits what ARM lets the app do, not what a script could.
resource runCommandsRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, 'spire-autopilot-run-commands')
  properties: {
    // Role names are unique per tenant: the group's name alone may repeat across subscriptions.
    roleName: 'SPIRE run-command operator (${resourceGroup().name}, ${uniqueString(resourceGroup().id)})'
    description: 'Managed run-commands on the SPIRE server VM, for spire-autopilot.'
    type: 'CustomRole'
    assignableScopes: [resourceGroup().id]
    permissions: [
      {
        actions: [
          'Microsoft.Compute/virtualMachines/read'
          'Microsoft.Compute/virtualMachines/runCommands/read'
          'Microsoft.Compute/virtualMachines/runCommands/write'
          'Microsoft.Compute/virtualMachines/runCommands/delete'
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
  }
}

// On the VM itself, not its resource group: other VMs there stay out of reach.
resource runCommands 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: vm
  name: guid(vm.id, principalId, 'spire-autopilot-run-commands')
  properties: {
    roleDefinitionId: runCommandsRole.id
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
