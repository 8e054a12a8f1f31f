import { scenarioTest } from "./run-scenario.js";

scenarioTest("logs-alert");
