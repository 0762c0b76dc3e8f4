/**
 * The binary's entry point (`deno task build`): runs the CLI unconditionally, because
 * `import.meta.main` does not survive the CommonJS bundle a Node single-executable
 * application needs. `deno run node/cli.ts` keeps working through cli.ts's own check.
 *
 * Runtime warnings: stderr carries the node's JSON log lines and nothing else, so Node's
 * default printer is replaced. ExperimentalWarnings (Node 22 emits one for `node:sqlite`, on
 * the next tick after the bundle loads it, so removing the printer here is in time) are
 * dropped; any other warning becomes a JSON line.
 */
import process from "node:process";
import { run } from "./cli.ts";
import { JsonLogger } from "./log.ts";

process.removeAllListeners("warning");
process.on("warning", (w: Error) => {
  if (w.name === "ExperimentalWarning") return;
  new JsonLogger({ component: "runtime" }).log("warn", "runtime_warning", {
    name: w.name,
    message: w.message,
  });
});
run();
