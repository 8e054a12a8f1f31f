import { scenarioTest } from "./run-scenario.js";

scenarioTest("multi-replica");
