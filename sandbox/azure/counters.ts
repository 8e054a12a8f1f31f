/** What the simulator saw, for tests and scenario figures. `snapshot()` copies; `reset()` zeroes. */
export interface CounterSnapshot {
  /** ARM requests that reached a route, by ARM action (Microsoft.App/containerApps/write ...). */
  armCalls: Record<string, number>;
  /** Requests refused with 403 AuthorizationFailed by the fault. */
  authorizationFailures: number;
  containerApps: {
    puts: number;
    patches: number;
    deletes: number;
    revisionsCreated: number;
    revisionRestarts: number;
    /** Containers reset to the placeholder image by a partial update (learnings #3, #29). */
    containersReset: number;
    /** Replicas replaced (fault, revision restart). */
    replicaRestarts: number;
    /** Container restarts after the container's process exited (restartCount increments). */
    containerRestarts: number;
    /** Operations that ended Failed (e.g. a reused revision suffix). */
    failedOperations: number;
  };
  runCommands: {
    created: number;
    deleted: number;
    scriptsRun: number;
    timedOut: number;
    /** Times the guest agent got wedged (learnings #20, #34). */
    wedges: number;
    /** Requests refused or left hanging because the agent was wedged. */
    blockedByWedge: number;
    legacyInvocations: number;
    /** Legacy POST runCommand refused with Conflict because one was already running (#17). */
    legacyConflicts: number;
  };
}

function zero(): CounterSnapshot {
  return {
    armCalls: {},
    authorizationFailures: 0,
    containerApps: {
      puts: 0,
      patches: 0,
      deletes: 0,
      revisionsCreated: 0,
      revisionRestarts: 0,
      containersReset: 0,
      replicaRestarts: 0,
      containerRestarts: 0,
      failedOperations: 0,
    },
    runCommands: {
      created: 0,
      deleted: 0,
      scriptsRun: 0,
      timedOut: 0,
      wedges: 0,
      blockedByWedge: 0,
      legacyInvocations: 0,
      legacyConflicts: 0,
    },
  };
}

export class Counters {
  private data = zero();

  armCall(action: string): void {
    this.data.armCalls[action] = (this.data.armCalls[action] ?? 0) + 1;
  }

  authorizationFailure(): void {
    this.data.authorizationFailures += 1;
  }

  containerApps(key: keyof CounterSnapshot["containerApps"], n = 1): void {
    this.data.containerApps[key] += n;
  }

  runCommands(key: keyof CounterSnapshot["runCommands"], n = 1): void {
    this.data.runCommands[key] += n;
  }

  /** Calls of one ARM action (case-insensitive). */
  calls(action: string): number {
    const wanted = action.toLowerCase();
    let n = 0;
    for (const [k, v] of Object.entries(this.data.armCalls)) if (k.toLowerCase() === wanted) n += v;
    return n;
  }

  get wedges(): number {
    return this.data.runCommands.wedges;
  }

  snapshot(): CounterSnapshot {
    return structuredClone(this.data);
  }

  reset(): void {
    this.data = zero();
  }
}
