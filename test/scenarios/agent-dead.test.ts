import { scenarioTest } from "./run-scenario.js";

scenarioTest("agent-dead");
