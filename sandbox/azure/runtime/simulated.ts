import type { ContainerExit, ContainerLaunch, ContainerRuntime, RunningContainer } from "./types.js";

/**
 * A command that ends at once, as a container that cannot start does: `false`, or `sh -c "exit N"`
 * with N > 0. Such a container crash-loops, and a new revision made of it never activates.
 */
export function immediateExitCode(command: string[], args: string[]): number | undefined {
  const argv = [...command, ...args];
  const program = argv[0]?.split("/").at(-1);
  if (program === "false") return 1;
  if ((program === "sh" || program === "bash") && argv[1] === "-c") {
    const m = /^\s*exit\s+(\d{1,3})\s*$/.exec(argv[2] ?? "");
    const code = m ? Number(m[1]) : 0;
    if (code > 0) return code;
  }
  return undefined;
}

/**
 * Every container "runs": ready after the profile's start time, exits only when stopped, unless
 * its command ends at once (immediateExitCode). Used for all containers in pure ARM tests and for
 * the non-sidecar containers next to a real agent.
 */
export class SimulatedContainerRuntime implements ContainerRuntime {
  private readonly live = new Set<() => void>();

  async start(launch: ContainerLaunch): Promise<RunningContainer> {
    const exitCode = immediateExitCode(launch.command, launch.args);
    if (exitCode !== undefined) {
      launch.console(
        "stderr",
        `${launch.container}: ${[...launch.command, ...launch.args].join(" ")} exited with ${exitCode}`,
      );
      return {
        ready: new Promise<void>(() => {}),
        exited: new Promise<ContainerExit>((resolve) =>
          setTimeout(() => resolve({ exitCode, reason: "Error" }), 20),
        ),
        stop: async () => {},
      };
    }
    let stopNow: () => void = () => {};
    const exited = new Promise<ContainerExit>((resolve) => {
      stopNow = () => resolve({ exitCode: 0, reason: "Stopped" });
    });
    let timer: NodeJS.Timeout | undefined;
    const ready = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, launch.profile.containerStartMs);
    });
    const stop = () => {
      if (timer) clearTimeout(timer);
      this.live.delete(stop);
      stopNow();
    };
    this.live.add(stop);
    launch.console("stdout", `${launch.container}: started ${launch.image} (simulated)`);
    return {
      ready,
      exited,
      async stop() {
        stop();
      },
    };
  }

  async close(): Promise<void> {
    for (const stop of [...this.live]) stop();
  }
}
