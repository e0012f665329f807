import * as path from "node:path";
import * as vscode from "vscode";
import type { WorkerAnalyzeOptions } from "./worker/protocol";

export const SECTION = "modelDoctor";

export interface DoctorSettings {
  batchSize: number;
  batches: number;
  dims: Record<string, number>;
  dataFiles: Record<string, string>;
  lintOnSave: boolean;
  staticOnlyOnSave: boolean;
  lintOnStartup: boolean;
  workerTimeoutMs: number;
  debounceMs: number;
  /** How many analyses run at once; the others wait in a queue. */
  maxParallelAnalyses: number;
  /** Resident memory limit of one analysis worker (MB); the worker's watchdog stops it above. */
  workerMaxMemoryMb: number;
}

export function readSettings(scope?: vscode.Uri): DoctorSettings {
  const c = vscode.workspace.getConfiguration(SECTION, scope);
  const dims: Record<string, number> = {};
  for (const [k, v] of Object.entries(c.get<Record<string, unknown>>("probe.dims") ?? {})) if (typeof v === "number" && Number.isFinite(v)) dims[k] = v;
  const dataFiles: Record<string, string> = {};
  for (const [k, v] of Object.entries(c.get<Record<string, unknown>>("probe.dataFiles") ?? {})) if (typeof v === "string") dataFiles[k] = v;
  return {
    batchSize: Math.max(1, Math.floor(c.get<number>("probe.batchSize") ?? 8)),
    batches: Math.max(1, Math.floor(c.get<number>("probe.batches") ?? 2)),
    dims, dataFiles,
    lintOnSave: c.get<boolean>("lintOnSave") ?? true,
    staticOnlyOnSave: c.get<boolean>("staticOnlyOnSave") ?? false,
    lintOnStartup: c.get<boolean>("lintOnStartup") ?? true,
    workerTimeoutMs: Math.max(1, c.get<number>("workerTimeoutSeconds") ?? 120) * 1000,
    debounceMs: Math.max(0, c.get<number>("lintDebounceMs") ?? 300),
    maxParallelAnalyses: Math.max(1, Math.floor(c.get<number>("maxParallelAnalyses") ?? 2)),
    workerMaxMemoryMb: Math.max(1, c.get<number>("worker.maxMemoryMb") ?? 4096),
  };
}

/**
 * Probe options for a model. Untrusted workspaces never run a model (static only) and never read
 * data files named by workspace settings.
 */
export function probeOptions(uri: vscode.Uri, s: DoctorSettings, opts: { staticOnly?: boolean; inputFile?: string }): WorkerAnalyzeOptions {
  const trusted = vscode.workspace.isTrusted;
  const o: WorkerAnalyzeOptions = { batchSize: s.batchSize, batches: s.batches, staticOnly: !trusted || !!opts.staticOnly };
  if (Object.keys(s.dims).length) o.dims = s.dims;
  let input = opts.inputFile;
  if (!input && trusted) {
    const folder = vscode.workspace.getWorkspaceFolder(uri);
    const rel = folder ? path.relative(folder.uri.fsPath, uri.fsPath).split(path.sep).join("/") : uri.fsPath;
    const match = s.dataFiles[rel] ?? s.dataFiles[path.basename(uri.fsPath)];
    if (match) input = path.isAbsolute(match) || !folder ? match : path.join(folder.uri.fsPath, match);
  }
  if (input && trusted) o.inputFile = input;
  return o;
}
