import { scenarioTest } from "./run-scenario.js";

scenarioTest("spire-basics");
