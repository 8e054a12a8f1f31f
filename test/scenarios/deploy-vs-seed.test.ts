import { scenarioTest } from "./run-scenario.js";

scenarioTest("deploy-vs-seed");
