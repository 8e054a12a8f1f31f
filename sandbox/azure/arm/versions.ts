/**
 * api-versions the simulator serves. The first of each list is what the installed SDK sends
 * (@azure/arm-appcontainers 4.x, @azure/arm-compute 25.x); a unit test reads the SDKs to keep
 * these in step when they are upgraded.
 */
export const CONTAINER_APPS_API_VERSIONS = ["2026-07-01", "2025-07-01", "2025-01-01", "2024-03-01"] as const;
export const COMPUTE_API_VERSIONS = [
  "2026-04-01",
  "2025-04-01",
  "2024-11-01",
  "2024-07-01",
  "2024-03-01",
] as const;
