import { scenarioTest } from "./run-scenario.js";

scenarioTest("sweep-quiet");
