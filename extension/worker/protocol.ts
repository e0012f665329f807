// Typed messages between the extension host and the engine worker (a forked Node process running
// dist/worker.js). The channel uses JSON serialisation, so NaN and ±Infinity in a report arrive as
// null: readers of a report received here must be NaN-safe.
import type { Report } from "../../src/report/types";

/** Probe options the worker passes to `analyze` (a subset of AnalyzeOptions, all plain data). */
export interface WorkerAnalyzeOptions {
  staticOnly?: boolean;
  batchSize?: number;
  batches?: number;
  seed?: number;
  dims?: Record<string, number>;
  inputFile?: string;
  intraOpThreads?: number;
}

export type ToWorker =
  /** `limits`: enforced by the worker's watchdog thread (src/runtime/watchdog.ts), which kills the worker with a one-line reason on stderr. */
  | { type: "analyze"; id: number; path: string; options: WorkerAnalyzeOptions; limits?: { maxMemoryMb?: number } }
  | { type: "cancel"; id: number };

export type FromWorker =
  | { type: "ready"; pid: number }
  | { type: "progress"; id: number; fraction: number; message: string }
  | { type: "result"; id: number; report: Report }
  /** `code` is a DoctorError code (`model.invalid`, `cancelled`, ...) or `error` for anything else. */
  | { type: "error"; id: number; code: string; message: string };

export function isFromWorker(m: unknown): m is FromWorker {
  return typeof m === "object" && m !== null && typeof (m as { type?: unknown }).type === "string";
}
