import { scenarioTest } from "./run-scenario.js";

scenarioTest("server-hang");
