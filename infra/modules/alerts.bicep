// The product's log search alert rules, straight from shared/kql: the rule definitions from
// alert-rules.json and each query from its .kql file, so the app, the simulator and Azure run the
// same text. Every rule notifies one action group calling the app's /api/alerts webhook with the
// common alert schema.
param location string
param tags object
param workspaceId string
param functionAppName string
param alertAuth string
param alertAudience string
param alertAppObjectId string

var rules = loadJsonContent('../../shared/kql/alert-rules.json')

// loadTextContent needs a literal path, so each query a rule may name is listed here by its file
// name (test/unit/infra-alerts.test.ts checks every queryFile of alert-rules.json has its entry).
var queries = {
  'agent-attestation-failures': loadTextContent('../../shared/kql/agent-attestation-failures.kql')
}

resource site 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

var webhookUrl = alertAuth == 'entra'
  ? 'https://${site.properties.defaultHostName}/api/alerts'
  : 'https://${site.properties.defaultHostName}/api/alerts?code=${listKeys('${site.id}/host/default', '2024-04-01').functionKeys.default}'

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: 'ag-spire-autopilot'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'spireauto'
    enabled: true
    webhookReceivers: [
      {
        name: 'spire-autopilot-alerts'
        serviceUri: webhookUrl
        useCommonAlertSchema: true
        // Secure webhook: Azure Monitor sends an Entra token for the app registration, carrying
        // the ActionGroupsSecureWebhook role the app checks (ALERT_AUTH=entra).
        useAadAuth: alertAuth == 'entra'
        objectId: alertAuth == 'entra' ? alertAppObjectId : null
        identifierUri: alertAuth == 'entra' ? alertAudience : null
        tenantId: alertAuth == 'entra' ? tenant().tenantId : null
      }
    ]
  }
}

resource alertRules 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = [
  for rule in rules: {
    name: rule.name
    location: location
    tags: tags
    kind: 'LogAlert'
    properties: {
      displayName: rule.name
      description: rule.description
      severity: rule.severity
      enabled: rule.enabled
      evaluationFrequency: rule.evaluationFrequency
      windowSize: rule.windowSize
      scopes: [workspaceId]
      criteria: {
        allOf: map(rule.criteria.allOf, c => {
          query: queries[c.queryFile]
          timeAggregation: c.timeAggregation
          metricMeasureColumn: c.metricMeasureColumn
          // Split by ContainerAppName: one alert per app, whose dimension names the app to re-attest.
          dimensions: c.dimensions
          operator: c.operator
          threshold: c.threshold
          failingPeriods: c.failingPeriods
        })
      }
      autoMitigate: rule.autoMitigate
      actions: { actionGroups: [actionGroup.id] }
    }
  }
]
