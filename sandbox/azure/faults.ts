/**
 * Fault switches. Some model what Azure really does (the placeholder reset of learnings #3/#29
 * and the wedge rules of #20/#34 are on by default, as in Azure); others are injected on demand
 * (403 after a role assignment, #15). Actions on running things (replica restart, agent kill,
 * server pause) are methods of the simulator, not switches.
 */
export type WedgedRunCommandBehaviour = "hang" | "conflict";

export interface FaultSettings {
  /** A PATCH that touches the template resets every container it does not change to a placeholder image (#3, #29). */
  patchResetsOtherContainers: boolean;
  /** 403 AuthorizationFailed for these ARM actions until the given time (#15: role assignments propagate slowly). */
  authorizationFailed?: { actions: string[]; untilEpochMs: number };
  /** Deleting a run-command whose provisioningState is not terminal, or rapid create-after-delete on a fresh VM, wedges the guest agent (#20, #34). */
  runCommandWedges: boolean;
  /** What a wedged guest agent does with later run-commands: accept and never progress, or refuse with 409 Conflict. */
  wedgedRunCommands: WedgedRunCommandBehaviour;
}

export interface FaultUpdate {
  patchResetsOtherContainers?: boolean;
  /** Actions are exact ARM actions or globs with '*' (Microsoft.App/containerApps/*); null clears. */
  authorizationFailed?: { actions: string[]; forSeconds: number } | null;
  runCommandWedges?: boolean;
  wedgedRunCommands?: WedgedRunCommandBehaviour;
}

export const DEFAULT_FAULTS: FaultSettings = {
  patchResetsOtherContainers: true,
  runCommandWedges: true,
  wedgedRunCommands: "hang",
};

function globToRegex(glob: string): RegExp {
  const escaped = glob.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*");
  return new RegExp(`^${escaped}$`, "i");
}

export class Faults {
  private current: FaultSettings = { ...DEFAULT_FAULTS };

  constructor(
    initial: FaultUpdate = {},
    private readonly now: () => number = Date.now,
  ) {
    this.set(initial);
  }

  get settings(): Readonly<FaultSettings> {
    return this.current;
  }

  set(update: FaultUpdate): void {
    const next: FaultSettings = { ...this.current };
    if (update.patchResetsOtherContainers !== undefined)
      next.patchResetsOtherContainers = update.patchResetsOtherContainers;
    if (update.runCommandWedges !== undefined) next.runCommandWedges = update.runCommandWedges;
    if (update.wedgedRunCommands !== undefined) {
      if (update.wedgedRunCommands !== "hang" && update.wedgedRunCommands !== "conflict") {
        throw new Error(`wedgedRunCommands must be "hang" or "conflict"`);
      }
      next.wedgedRunCommands = update.wedgedRunCommands;
    }
    if (update.authorizationFailed === null) {
      delete next.authorizationFailed;
    } else if (update.authorizationFailed !== undefined) {
      const { actions, forSeconds } = update.authorizationFailed;
      if (!Array.isArray(actions) || actions.some((a) => typeof a !== "string" || a === "")) {
        throw new Error("authorizationFailed.actions must be a list of ARM actions");
      }
      if (!(forSeconds >= 0)) throw new Error("authorizationFailed.forSeconds must be >= 0");
      next.authorizationFailed = { actions: [...actions], untilEpochMs: this.now() + forSeconds * 1000 };
    }
    this.current = next;
  }

  reset(): void {
    this.current = { ...DEFAULT_FAULTS };
  }

  /** Whether the 403 fault refuses this action now. */
  denies(action: string): boolean {
    const f = this.current.authorizationFailed;
    if (!f || this.now() >= f.untilEpochMs) return false;
    return f.actions.some((a) => globToRegex(a).test(action));
  }
}
