import { scenarioTest } from "./run-scenario.js";

scenarioTest("alert-storm");
