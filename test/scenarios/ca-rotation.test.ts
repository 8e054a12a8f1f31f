import { scenarioTest } from "./run-scenario.js";

scenarioTest("ca-rotation");
