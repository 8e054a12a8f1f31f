// A test app for the Key Vault event trigger under the local host: the product's handler and scope,
// exactly as functions/index.ts registers them, plus a stand-in "rotateBundle" orchestration (the
// real one is built elsewhere) that records its input and runs until told to finish, so a burst
// of events arrives while it runs.
import * as df from "durable-functions";
import { keyVaultEventsHandler } from "../../../functions/keyVaultEvents.js";
import { ROTATE_BUNDLE_ORCHESTRATION } from "../../../orchestrations/rotateBundle.start.js";
import { record } from "../../../sandbox/host/samples/journal.js";
import { loadConfig } from "../../../shared/config.js";
import { keyVaultEventScope } from "../../../shared/keyVaultEvents.js";

const config = loadConfig();

df.app.activity("recordRotation", {
  handler: (input: unknown) => {
    record("rotateBundle", "start", JSON.stringify(input));
  },
});

df.app.orchestration(ROTATE_BUNDLE_ORCHESTRATION, function* (context) {
  const input = context.df.getInput();
  yield context.df.callActivity("recordRotation", input);
  yield context.df.waitForExternalEvent("finish");
  return input;
});

df.app.client.eventGrid("keyVaultEvents", {
  handler: keyVaultEventsHandler({ scope: keyVaultEventScope(config) }),
});
