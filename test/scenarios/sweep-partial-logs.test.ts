import { scenarioTest } from "./run-scenario.js";

scenarioTest("sweep-partial-logs");
