// Runs the engine in a child process (DESIGN decision 3): one forked worker per analysis, so a
// native crash or a stuck onnxruntime run never touches the extension host. Cancel is a message
// followed by a kill if the worker does not stop; a timeout kills it; a worker that dies gives a
// clear error and the next run simply forks a fresh one.
import { fork, type ChildProcess } from "node:child_process";
import * as os from "node:os";
import * as path from "node:path";
import * as vscode from "vscode";
import type { Report } from "../src/report/types";
import { sweepStaleTempFiles } from "../src/runtime/temp-files";
import { isFromWorker, type ToWorker, type WorkerAnalyzeOptions } from "./worker/protocol";

export class EngineError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = "EngineError";
  }
}

export interface RunHandle {
  readonly promise: Promise<Report>;
  cancel(): void;
  readonly pid: number | undefined;
}

export interface EngineLog {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export class Engine {
  private nextId = 1;
  private readonly live = new Set<ChildProcess>();

  constructor(private readonly distDir: string, private readonly log: EngineLog) {}

  /** Starts one analysis in a fresh worker. */
  run(file: string, options: WorkerAnalyzeOptions, opts: { timeoutMs: number; maxMemoryMb?: number; progress?: (fraction: number, message: string) => void }): RunHandle {
    const id = this.nextId++;
    const workerPath = path.join(this.distDir, "worker.js");
    const t0 = Date.now();
    const child = fork(workerPath, [], {
      stdio: ["ignore", "pipe", "pipe", "ipc"],
      serialization: "json",
      execArgv: [],
      env: { ...process.env, ELECTRON_RUN_AS_NODE: "1" },
    });
    this.live.add(child);
    // Keep the editor responsive: the worker runs at a lower priority and leaves one core free.
    try {
      if (child.pid) os.setPriority(child.pid, 10);
    } catch {
      // not permitted on this platform: fine
    }
    if (options.intraOpThreads === undefined) options = { ...options, intraOpThreads: Math.max(1, os.availableParallelism() - 1) };
    const name = path.basename(file);
    this.log.info(`[${id}] analyse ${file} (worker pid ${child.pid}) ${JSON.stringify(options)}`);
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    child.stdout?.on("data", (d: Buffer) => this.log.info(`[${id}] worker: ${d.toString().trimEnd()}`));

    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    let finish: (err: EngineError | undefined, report?: Report, graceful?: boolean) => void = () => {};
    const promise = new Promise<Report>((resolve, reject) => {
      finish = (err, report, graceful = false) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        const alive = child.exitCode === null && child.signalCode === null;
        if (alive && graceful) {
          // Ask the worker to stop (it checks between batches), then make sure it does: onnxruntime
          // cannot interrupt a running batch.
          if (child.connected) {
            child.send({ type: "cancel", id } satisfies ToWorker);
            child.disconnect();
          }
          const killTimer = setTimeout(() => child.kill("SIGKILL"), 1500);
          child.once("exit", () => clearTimeout(killTimer));
        } else if (alive) {
          child.kill("SIGKILL");
        }
        this.live.delete(child);
        const secs = ((Date.now() - t0) / 1000).toFixed(2);
        if (err) {
          (err.code === "cancelled" ? this.log.info : this.log.warn).call(this.log, `[${id}] ${name}: ${err.code}: ${err.message} (${secs} s)`);
          reject(err);
        } else {
          this.log.info(`[${id}] ${name}: ${report!.summary.errors} errors, ${report!.summary.warnings} warnings, ${report!.summary.infos} infos (${secs} s)`);
          resolve(report!);
        }
      };
      child.on("message", (m: unknown) => {
        if (!isFromWorker(m) || settled) return;
        if (m.type === "ready") {
          const msg: ToWorker = { type: "analyze", id, path: file, options, limits: opts.maxMemoryMb ? { maxMemoryMb: opts.maxMemoryMb } : undefined };
          child.send(msg);
        } else if (m.type === "progress" && m.id === id) {
          opts.progress?.(m.fraction, m.message);
        } else if (m.type === "result" && m.id === id) {
          finish(undefined, m.report);
        } else if (m.type === "error" && m.id === id) {
          finish(new EngineError(m.code, m.message));
        }
      });
      child.on("error", (e) => finish(new EngineError("worker.failed", vscode.l10n.t("the analysis worker could not start: {0}", e.message))));
      // stderr may still hold the watchdog's last line when "exit" fires: wait for the stream to close (briefly).
      const stderrClosed = new Promise<void>((r) => {
        if (!child.stderr) return r();
        child.stderr.once("close", () => r());
      });
      child.on("exit", (code, signal) => {
        // A worker killed while onnxruntime read a temporary copy of the model (large models and
        // external data, next to the model) leaves it behind: remove it now that the pid is gone.
        if (signal) sweepStaleTempFiles(path.dirname(file));
        void Promise.race([stderrClosed, new Promise((r) => setTimeout(r, 500))]).then(() => {
          // The worker's watchdog (src/runtime/watchdog.ts) leaves one line "onnx-doctor: memory: <reason>".
          const limit = /onnx-doctor: memory: (.*)/.exec(stderr);
          if (limit) {
            finish(new EngineError("worker.memory",
              vscode.l10n.t("the analysis was stopped: {0} (setting modelDoctor.worker.maxMemoryMb)", limit[1].trim())));
            return;
          }
          const tail = stderr.trim().split("\n").slice(-3).join(" | ");
          const how = signal ? vscode.l10n.t("signal {0}", signal) : vscode.l10n.t("exit code {0}", String(code));
          finish(new EngineError("worker.crashed",
            vscode.l10n.t("the analysis worker stopped unexpectedly ({0}){1}. The next analysis starts a fresh worker.", how, tail ? `: ${tail}` : "")));
        });
      });
      timer = setTimeout(() => {
        finish(new EngineError("timeout", vscode.l10n.t("the analysis took longer than {0} s and was stopped (setting modelDoctor.workerTimeoutSeconds)", Math.round(opts.timeoutMs / 1000))));
      }, opts.timeoutMs);
    });
    return {
      promise,
      pid: child.pid,
      cancel: () => finish(new EngineError("cancelled", vscode.l10n.t("analysis cancelled")), undefined, true),
    };
  }

  /** Process ids of the workers that are running now (for the tests and the log). */
  livePids(): number[] {
    return [...this.live].map((c) => c.pid).filter((p): p is number => p !== undefined);
  }

  dispose(): void {
    for (const c of this.live) c.kill("SIGKILL");
    this.live.clear();
  }
}
