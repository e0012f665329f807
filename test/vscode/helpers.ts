// Shared by the VS Code test suites (bundled into each suite by scripts/build.mjs).
import { monitorEventLoopDelay } from "node:perf_hooks";
import * as vscode from "vscode";
import type { ModelDoctorApi } from "../../extension/extension";

export const EXT_ID = "onnx-model-doctor.onnx-model-doctor";
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
export const ws = (): string => vscode.workspace.workspaceFolders![0].uri.fsPath;

export async function waitFor<T>(what: string, fn: () => T | undefined | false | null, timeoutMs: number): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

export async function activate(): Promise<ModelDoctorApi> {
  const ext = vscode.extensions.getExtension<ModelDoctorApi>(EXT_ID);
  if (!ext) throw new Error(`${EXT_ID} is not installed`);
  return ext.activate();
}

/** Waits until no analysis is running (e.g. the background lint of the workspace at start-up). */
export async function waitIdle(api: ModelDoctorApi, timeoutMs = 60000): Promise<void> {
  await waitFor("no running analysis", () => api.controller.runningCount === 0 && api.engine.livePids().length === 0, timeoutMs);
}

export interface LoopStats {
  /** Wall-clock duration of the watched work. */
  ms: number;
  /** The largest extra delay of a 5 ms timer: how long the event loop could not run a callback. */
  worstMs: number;
  /** CPU time the extension host's main thread spent inside that worst interval (JS or native work blocking the loop). */
  worstIntervalCpuMs: number | null;
  /** The largest main-thread CPU time inside any one late interval: time the loop was really busy, not just descheduled. */
  worstBusyMs: number | null;
  /** perf_hooks.monitorEventLoopDelay's maximum (ms). */
  histogramMaxMs: number;
  stalls: string[];
}

type ThreadCpu = () => { user: number; system: number };

/**
 * Runs `work` while a 5 ms interval timer records how late each tick fires (the event loop's stalls).
 * Where Node has process.threadCpuUsage (Node >= 23.9; code-server's extension host runs on Node 24),
 * each late interval also records the main thread's CPU time, which tells a loop that was busy (our
 * code blocking it) from one that was only waiting for a CPU on a loaded machine.
 */
export async function watchEventLoop(work: () => Promise<unknown>): Promise<LoopStats> {
  const cpu = (process as unknown as { threadCpuUsage?: ThreadCpu }).threadCpuUsage?.bind(process);
  const cpuMs = (): number => { const c = cpu!(); return (c.user + c.system) / 1000; };
  const h = monitorEventLoopDelay({ resolution: 5 });
  h.enable();
  const t0 = performance.now();
  let last = t0;
  let lastCpu = cpu ? cpuMs() : 0;
  let worstMs = 0, worstIntervalCpuMs: number | null = null, worstBusyMs: number | null = cpu ? 0 : null;
  const stalls: string[] = [];
  const tick = setInterval(() => {
    const now = performance.now();
    const c = cpu ? cpuMs() : 0;
    const extra = now - last - 5;
    const busy = cpu ? c - lastCpu : null;
    if (extra > 20) stalls.push(`${extra.toFixed(0)}ms@${(now - t0).toFixed(0)}${busy !== null ? `(cpu ${busy.toFixed(0)})` : ""}`);
    if (extra > worstMs) { worstMs = extra; worstIntervalCpuMs = busy; }
    if (busy !== null && extra > 5) worstBusyMs = Math.max(worstBusyMs ?? 0, Math.min(busy, now - last));
    last = now;
    lastCpu = c;
  }, 5);
  try {
    await work();
  } finally {
    clearInterval(tick);
    h.disable();
  }
  return { ms: performance.now() - t0, worstMs, worstIntervalCpuMs, worstBusyMs, histogramMaxMs: h.max / 1e6, stalls };
}

export function describeLoop(s: LoopStats): string {
  return `worst timer delay ${s.worstMs.toFixed(1)} ms (main-thread cpu in it ${s.worstIntervalCpuMs?.toFixed(1) ?? "n/a"} ms), ` +
    `worst busy interval ${s.worstBusyMs?.toFixed(1) ?? "n/a"} ms, monitorEventLoopDelay max ${s.histogramMaxMs.toFixed(1)} ms, ` +
    `${s.ms.toFixed(0)} ms total [${s.stalls.join(" ")}]`;
}
