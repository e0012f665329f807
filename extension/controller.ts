import * as path from "node:path";
import * as vscode from "vscode";
import type { Report } from "../src/report/types";
import { probeOptions, readSettings } from "./config";
import { publish } from "./diagnostics";
import { Engine, EngineError, type RunHandle } from "./engine";
import type { ReportStore } from "./store";

export interface RunRequest {
  staticOnly?: boolean;
  inputFile?: string;
  /** Show a progress notification with a Cancel button. */
  notify?: boolean;
  reason: "command" | "save" | "startup" | "editor";
}

export type RunEvent =
  | { uri: vscode.Uri; kind: "progress"; fraction: number; message: string }
  | { uri: vscode.Uri; kind: "done"; report: Report }
  | { uri: vscode.Uri; kind: "failed"; code: string; message: string };

/**
 * Runs analyses (one at a time per model: a new run for a file cancels its previous run; at most
 * `modelDoctor.maxParallelAnalyses` workers at once, the rest wait in a first-in first-out queue), keeps
 * the report store, the Problems diagnostics and the status bar in step.
 */
export class Controller implements vscode.Disposable {
  private readonly running = new Map<string, { cancel(): void; id: number }>();
  private readonly events = new vscode.EventEmitter<RunEvent>();
  readonly onRun = this.events.event;
  private seq = 0;
  /** Analyses holding a worker slot now, the ones waiting for one, and the most that ever ran at once. */
  private active = 0;
  private readonly queue: (() => void)[] = [];
  private peak = 0;
  private readonly status: vscode.StatusBarItem;

  constructor(
    private readonly engine: Engine,
    readonly store: ReportStore,
    readonly diagnostics: vscode.DiagnosticCollection,
    readonly log: vscode.LogOutputChannel,
  ) {
    this.status = vscode.window.createStatusBarItem("modelDoctor.status", vscode.StatusBarAlignment.Left, 10);
    this.status.name = "Model Doctor";
    this.status.command = "modelDoctor.findings.focus";
    this.updateStatus();
    this.status.show();
  }

  /** How many analyses are running now. */
  get runningCount(): number {
    return this.running.size;
  }

  /** Analyses whose worker runs now (at most modelDoctor.maxParallelAnalyses). */
  get activeCount(): number {
    return this.active;
  }

  /** Analyses waiting for a free worker slot. */
  get queuedCount(): number {
    return this.queue.length;
  }

  /** The most analyses that ran at once since the last reset (for the tests and the log). */
  peakActive(reset = false): number {
    const p = this.peak;
    if (reset) this.peak = this.active;
    return p;
  }

  /** Waits for a worker slot; `cancel` takes a waiting request out of the queue (ready resolves false). */
  private slot(): { ready: Promise<boolean>; cancel(): void } {
    const take = (): void => {
      this.active++;
      this.peak = Math.max(this.peak, this.active);
    };
    if (this.active < readSettings().maxParallelAnalyses && this.queue.length === 0) {
      take();
      return { ready: Promise.resolve(true), cancel: () => {} };
    }
    let resolve!: (ok: boolean) => void;
    const ready = new Promise<boolean>((r) => (resolve = r));
    const waiter = (): void => {
      take();
      resolve(true);
    };
    this.queue.push(waiter);
    return {
      ready,
      cancel: () => {
        const i = this.queue.indexOf(waiter);
        if (i >= 0) {
          this.queue.splice(i, 1);
          resolve(false);
        }
      },
    };
  }

  private release(): void {
    this.active--;
    const max = readSettings().maxParallelAnalyses;
    while (this.active < max && this.queue.length) this.queue.shift()!();
  }

  isRunning(uri: vscode.Uri): boolean {
    return this.running.has(uri.toString());
  }

  cancel(uri: vscode.Uri): void {
    const r = this.running.get(uri.toString());
    if (r) {
      r.cancel();
      this.running.delete(uri.toString());
      this.updateStatus();
    }
  }

  /** Analyses a model; resolves with the report, or undefined when cancelled or failed (already reported). */
  async analyze(uri: vscode.Uri, req: RunRequest): Promise<Report | undefined> {
    const key = uri.toString();
    this.running.get(key)?.cancel();
    const settings = readSettings(uri);
    const options = probeOptions(uri, settings, { staticOnly: req.staticOnly, inputFile: req.inputFile });
    const id = ++this.seq;
    const slot = this.slot();
    let handle: RunHandle | undefined;
    let cancelled = false;
    const cancel = (): void => {
      cancelled = true;
      slot.cancel();
      handle?.cancel();
    };
    this.running.set(key, { cancel, id });
    this.updateStatus();
    const name = path.basename(uri.fsPath);
    const work = async (progress?: vscode.Progress<{ message?: string; increment?: number }>, token?: vscode.CancellationToken): Promise<Report | undefined> => {
      token?.onCancellationRequested(cancel);
      let lastFraction = 0;
      const sub = progress ? this.onRun((e) => {
        if (e.kind === "progress" && e.uri.toString() === key) {
          const inc = Math.max(0, (e.fraction - lastFraction) * 100);
          lastFraction = Math.max(lastFraction, e.fraction);
          progress.report({ message: e.message, increment: inc });
        }
      }) : undefined;
      let holding = false;
      try {
        holding = await slot.ready;
        if (!holding || cancelled) throw new EngineError("cancelled", vscode.l10n.t("analysis cancelled"));
        handle = this.engine.run(uri.fsPath, options, {
          timeoutMs: settings.workerTimeoutMs,
          maxMemoryMb: settings.workerMaxMemoryMb,
          progress: (fraction, message) => this.events.fire({ uri, kind: "progress", fraction, message }),
        });
        const report = await handle.promise;
        if (this.running.get(key)?.id !== id) return undefined; // superseded
        this.store.set(uri, report, !!options.staticOnly);
        publish(this.diagnostics, uri, report);
        this.events.fire({ uri, kind: "done", report });
        return report;
      } catch (e) {
        const err = e instanceof EngineError ? e : new EngineError("error", String(e));
        if (err.code === "cancelled") {
          if (this.running.get(key)?.id === id) this.events.fire({ uri, kind: "failed", code: err.code, message: vscode.l10n.t("analysis cancelled") });
          return undefined;
        }
        if (this.running.get(key)?.id !== id) return undefined;
        this.events.fire({ uri, kind: "failed", code: err.code, message: err.message });
        if (err.code === "model.invalid" || err.code === "model.unsupported") {
          const d = new vscode.Diagnostic(new vscode.Range(0, 0, 0, 0), err.message, vscode.DiagnosticSeverity.Error);
          d.source = "Model Doctor";
          d.code = err.code;
          this.diagnostics.set(uri, [d]);
        }
        const showLog = vscode.l10n.t("Show Log");
        if (req.reason === "command") void vscode.window.showErrorMessage(vscode.l10n.t("Model Doctor: {0}: {1}", name, err.message), showLog).then((a) => { if (a === showLog) this.log.show(); });
        return undefined;
      } finally {
        if (holding) this.release();
        sub?.dispose();
        if (this.running.get(key)?.id === id) this.running.delete(key);
        this.updateStatus();
      }
    };
    if (!req.notify) return work();
    return vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: vscode.l10n.t("Model Doctor: analysing {0}", name), cancellable: true },
      (progress, token) => work(progress, token),
    );
  }

  forget(uri: vscode.Uri): void {
    this.cancel(uri);
    this.diagnostics.delete(uri);
    this.store.delete(uri);
    this.updateStatus();
  }

  clearAll(): void {
    for (const r of this.running.values()) r.cancel();
    this.running.clear();
    this.diagnostics.clear();
    this.store.clear();
    this.updateStatus();
  }

  updateStatus(): void {
    const busy = this.running.size;
    const all = this.store.all();
    const errors = all.reduce((a, s) => a + s.report.summary.errors, 0);
    const warnings = all.reduce((a, s) => a + s.report.summary.warnings, 0);
    if (busy) {
      this.status.text = `$(loading~spin) ${vscode.l10n.t("Model Doctor: analysing {0}", busy)}`;
    } else {
      // Icon before its count, as VS Code's own Problems item shows them.
      this.status.text = `$(pulse) $(error) ${errors} $(warning) ${warnings}`;
    }
    this.status.tooltip = vscode.workspace.isTrusted
      ? vscode.l10n.t("Model Doctor: {0} models analysed, {1} errors, {2} warnings", all.length, errors, warnings)
      : vscode.l10n.t("Model Doctor: {0} models analysed, {1} errors, {2} warnings (untrusted workspace: static analysis only)", all.length, errors, warnings);
  }

  dispose(): void {
    for (const r of this.running.values()) r.cancel();
    this.running.clear();
    this.status.dispose();
    this.events.dispose();
  }
}
