#!/bin/sh
# After the first deploy the functions exist, so the Key Vault event subscription (an AzureFunction
# destination must name an existing function) and the alert action group (the function key) can
# be wired: provision once more with WIRE_TRIGGERS=true. Later runs find it set and do nothing.
set -eu
if [ "$(azd env get-value WIRE_TRIGGERS 2>/dev/null || true)" = "true" ]; then
  exit 0
fi
azd env set WIRE_TRIGGERS true
azd provision --no-prompt
