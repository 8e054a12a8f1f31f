/**
 * The seed VM's `spire-server` Docker container, backed by a real local server (sandbox/spire):
 * what `docker restart|stop|start|rm|run spire-server` do to it. The server keeps its data in
 * the container (learning #25's setup): `rm` destroys the datastore and CA keys, `run` starts
 * over with a new CA.
 */
import { mkdir, rm } from "node:fs/promises";
import type { SpireServerHandle } from "../../spire/server.js";
import type { SpireServerContainer } from "./docker.js";

export function spireServerContainer(server: SpireServerHandle): SpireServerContainer {
  let removed = false;
  let stopped = false;
  return {
    serverBin: server.bins.serverBin,
    socketPath: server.socketPath,
    state() {
      if (removed) return "removed";
      return stopped || !server.running ? "exited" : "running";
    },
    async restart() {
      await server.restart();
      stopped = false;
    },
    async stop() {
      await server.stop();
      stopped = true;
    },
    async start() {
      if (!stopped && server.running) return;
      await server.restart();
      stopped = false;
    },
    async remove() {
      await server.stop();
      stopped = true;
      removed = true;
      await rm(server.dataDir, { recursive: true, force: true });
    },
    async create() {
      await mkdir(server.dataDir, { recursive: true });
      await server.restart();
      removed = false;
      stopped = false;
    },
    logTail(lines) {
      return server.logs.tailText(lines);
    },
    pause() {
      server.pause();
    },
    resume() {
      server.resume();
    },
  };
}
