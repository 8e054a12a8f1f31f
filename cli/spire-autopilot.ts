import { run } from "./main.js";

run(process.argv.slice(2), {
  out: process.stdout,
  err: process.stderr,
  env: process.env,
  isTTY: Boolean(process.stdout.isTTY && process.stderr.isTTY),
}).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`error: ${(err as Error).stack ?? err}\n`);
    process.exitCode = 1;
  },
);
