import { scenarioTest } from "./run-scenario.js";

scenarioTest("deploy-dry-run");
