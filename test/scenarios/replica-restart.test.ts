import { scenarioTest } from "./run-scenario.js";

scenarioTest("replica-restart");
