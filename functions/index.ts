// The one place that registers every function of the app (HTTP, timer, orchestration, activity).
import { app } from "@azure/functions";
import { loadConfig } from "../shared/config.js";
import { healthHandler } from "./health.js";

// Validate every setting before registering anything: a misconfigured app fails at load with one
// error naming every problem, rather than at the first request or timer.
const config = loadConfig();

app.http("health", {
  route: "health",
  methods: ["GET"],
  authLevel: "anonymous",
  handler: healthHandler(config),
});
