import { scenarioTest } from "./run-scenario.js";

scenarioTest("admin-svid-rotation");
