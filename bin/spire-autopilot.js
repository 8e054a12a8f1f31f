#!/usr/bin/env node
// The CLI's entry for `npx spire-autopilot`: runs the TypeScript source through tsx (a
// devDependency), so a fresh clone needs no build step.
import { register } from "tsx/esm/api";

register();
await import("../cli/spire-autopilot.ts");
