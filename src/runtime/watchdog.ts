import { Worker } from "node:worker_threads";
import { liveTempFiles, onTempFilesChange } from "./temp-files";

/** Limits for one analysis; onnxruntime blocks the JS thread, so a timer on it cannot enforce them. */
export interface WatchdogLimits {
  /** Wall-clock limit in seconds. */
  timeoutSeconds?: number;
  /** Resident memory limit of the whole process in megabytes. */
  maxMemoryMb?: number;
  /** What the user can change to fit the limits (default: the analysis's probe options). */
  hint?: { what: string; timeout: string; memory: string };
}

// Runs on its own thread: it still ticks while session.run() holds the main thread, writes its
// one-line reason straight to stderr (the main thread's streams are blocked too) and ends the process.
// Before that it removes the temp model copies that exist (src/runtime/temp-files.ts): the main
// thread posts every one it creates or removes, and cannot clean up after a SIGKILL.
const watchdogSource = `
  const { workerData, parentPort } = require("node:worker_threads");
  const { writeSync, rmSync } = require("node:fs");
  const started = Date.now();
  const temps = new Set(workerData.tempFiles);
  parentPort.on("message", (m) => {
    if (m && typeof m.added === "string") temps.add(m.added);
    if (m && typeof m.removed === "string") temps.delete(m.removed);
  });
  const stop = (code, reason) => {
    for (const t of temps) { try { rmSync(t, { force: true }); } catch {} }
    try { writeSync(2, "onnx-doctor: " + code + ": " + reason + "\\n"); } catch {}
    process.kill(process.pid, "SIGKILL");
  };
  setInterval(() => {
    if (workerData.timeoutSeconds && Date.now() - started > workerData.timeoutSeconds * 1000) {
      stop("timeout", workerData.hint.what + " stopped after " + workerData.timeoutSeconds + " s (--timeout); " + workerData.hint.timeout);
    }
    const rss = process.memoryUsage.rss() / 1e6;
    if (workerData.maxMemoryMb && rss > workerData.maxMemoryMb) {
      stop("memory", workerData.hint.what + " stopped at " + Math.round(rss) + " MB resident, above --max-memory " + workerData.maxMemoryMb + " MB; " + workerData.hint.memory);
    }
  }, 100);
`;

/**
 * Starts a watchdog thread that kills this process with a one-line reason when a limit is
 * exceeded. Returns a function that stops the watchdog.
 */
export function startWatchdog(limits: WatchdogLimits): () => void {
  if (!limits.timeoutSeconds && !limits.maxMemoryMb) return () => {};
  const hint = limits.hint ?? { what: "analysis", timeout: "try a smaller --batch-size, fewer --batches or --static", memory: "try a smaller --batch-size or --static" };
  const worker = new Worker(watchdogSource, { eval: true, workerData: { ...limits, hint, tempFiles: liveTempFiles() } });
  worker.unref();
  const unsubscribe = onTempFilesChange((change) => worker.postMessage(change));
  return () => {
    unsubscribe();
    void worker.terminate();
  };
}
