// The engine's worker process (DESIGN decision 3): forked by the extension host, it runs
// `analyze` (whose onnxruntime session.run blocks this process's thread, not the editor's) and
// reports progress and the result by IPC. A cancel message aborts the run; the host kills this
// process when it does not answer in time or on timeout.
import { analyze, DoctorError } from "../../src/index";
import { oneLine } from "../../src/onnx/errors";
import { startWatchdog } from "../../src/runtime/watchdog";
import type { FromWorker, ToWorker } from "./protocol";

const send = (m: FromWorker): void => {
  process.send?.(m);
};
const running = new Map<number, AbortController>();

process.on("message", (raw: unknown) => {
  const m = raw as ToWorker;
  if (m.type === "cancel") {
    running.get(m.id)?.abort();
    return;
  }
  if (m.type !== "analyze") return;
  // The memory limit: onnxruntime blocks this thread, so a watchdog thread checks the RSS and kills this
  // process with "onnx-doctor: memory: <reason>" on stderr, which the host shows as the error.
  if (m.limits?.maxMemoryMb) startWatchdog({ maxMemoryMb: m.limits.maxMemoryMb });
  const abort = new AbortController();
  running.set(m.id, abort);
  let last = 0;
  void analyze(m.path, m.options, {
    signal: abort.signal,
    progress: (fraction, message) => {
      const now = Date.now();
      if (now - last < 50 && fraction < 1) return; // keep the channel quiet
      last = now;
      send({ type: "progress", id: m.id, fraction, message });
    },
  }).then(
    (report) => send({ type: "result", id: m.id, report }),
    (e: unknown) => send({ type: "error", id: m.id, code: e instanceof DoctorError ? e.code : "error", message: oneLine(e) }),
  ).finally(() => running.delete(m.id));
});

process.on("disconnect", () => process.exit(0));
send({ type: "ready", pid: process.pid });
