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
    /** Most managed run-commands that existed at once on one VM (PUT until the delete finished). */
    maxConcurrent: number;
    /** Output blobs the VM wrote (outputBlobUri / errorBlobUri). */
    outputBlobsWritten: number;
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
      maxConcurrent: 0,
      outputBlobsWritten: 0,
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

  /** Raises a high-water mark to `n` if it is higher. */
  runCommandsAtLeast(key: "maxConcurrent", n: number): void {
    this.data.runCommands[key] = Math.max(this.data.runCommands[key], n);
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

/** One ARM exchange as it crossed the wire: what anyone reading ARM (or its logs) could see. */
export interface ArmExchange {
  method: string;
  path: string;
  /** The route's resource type (e.g. virtualMachines/runCommands, containerApps). */
  resourceType: string;
  action: string;
  /** The request body as sent ("" when none). */
  requestBody: string;
  status: number;
  /** The response body as served ("" when none). */
  responseBody: string;
}

/**
 * Every ARM request and response the simulator handled, so a test can scan what a Reader (or
 * the request's sender's logs) could ever have seen, e.g. for join tokens.
 */
export class ArmTranscript {
  private items: ArmExchange[] = [];

  record(exchange: ArmExchange): void {
    this.items.push(exchange);
  }

  all(): readonly ArmExchange[] {
    return this.items;
  }

  /** Responses for run-command resources (PUT, GET with or without instance view, list). */
  runCommandResponses(): string[] {
    return this.items
      .filter((x) => x.resourceType.toLowerCase() === "virtualmachines/runcommands")
      .map((x) => x.responseBody);
  }

  reset(): void {
    this.items = [];
  }
}
