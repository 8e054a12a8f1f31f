import type { ContainerExit, ContainerLaunch, ContainerRuntime, RunningContainer } from "./types.js";

/**
 * Every container "runs": ready after the profile's start time, exits only when stopped. Used for
 * all containers in pure ARM tests and for the non-sidecar containers next to a real agent.
 */
export class SimulatedContainerRuntime implements ContainerRuntime {
  private readonly live = new Set<() => void>();

  async start(launch: ContainerLaunch): Promise<RunningContainer> {
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
