// Shared by the VS Code test suites (bundled into each suite by scripts/build.mjs).
import * as fs from "node:fs";
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

/** Waits until no analysis has run for `quietMs` (e.g. the background lint of the workspace at start-up). */
export async function waitIdle(api: ModelDoctorApi, timeoutMs = 60000, quietMs = 1500): Promise<void> {
  let since = Date.now();
  await waitFor("no running analysis", () => {
    if (api.controller.runningCount > 0 || api.engine.livePids().length > 0) since = Date.now();
    return Date.now() - since >= quietMs;
  }, timeoutMs);
}

export interface LoopStats {
  /** Wall-clock duration of the watched work. */
  ms: number;
  /** The largest extra delay of a 5 ms timer: how long the event loop could not run a callback. */
  worstMs: number;
  /** Of that worst delay: the main thread's CPU time (its own work) and its wait for a CPU (other processes'). */
  worstCpuMs: number | null;
  worstRunqueueMs: number | null;
  /**
   * The largest delay not explained by waiting for a CPU: extra delay minus the main thread's run-queue wait in
   * that interval (Linux schedstat). This is the time the loop was blocked by work or a blocking call of its own.
   * Null where schedstat is missing.
   */
  worstBlockedMs: number | null;
  /** perf_hooks.monitorEventLoopDelay's maximum (ms). */
  histogramMaxMs: number;
  stalls: string[];
}

/** CPU time and run-queue wait (ms) of the main thread, from /proc/self/task/<pid>/schedstat (Linux). */
function schedstat(): { cpu: number; wait: number } | null {
  try {
    const [cpu, wait] = fs.readFileSync(`/proc/self/task/${process.pid}/schedstat`, "utf8").trim().split(/\s+/).map(Number);
    return Number.isFinite(cpu) && Number.isFinite(wait) ? { cpu: cpu / 1e6, wait: wait / 1e6 } : null;
  } catch {
    return null;
  }
}

/**
 * Runs `work` while a 5 ms interval timer records how late each tick fires (the event loop's stalls). On Linux
 * each late interval is split with the main thread's schedstat into its own CPU time and its wait for a CPU:
 * on a loaded machine (2 cores shared with the analysis worker, the browser and code-server) a timer is also
 * late when the OS runs other processes, which does not block the event loop.
 */
export async function watchEventLoop(work: () => Promise<unknown>): Promise<LoopStats> {
  const h = monitorEventLoopDelay({ resolution: 5 });
  h.enable();
  const t0 = performance.now();
  let last = t0;
  let lastStat = schedstat();
  const hasStat = lastStat !== null;
  let worstMs = 0, worstCpuMs: number | null = null, worstRunqueueMs: number | null = null, worstBlockedMs: number | null = hasStat ? 0 : null;
  const stalls: string[] = [];
  const tick = setInterval(() => {
    const now = performance.now();
    const stat = hasStat ? schedstat() : null;
    const extra = now - last - 5;
    const cpu = stat && lastStat ? stat.cpu - lastStat.cpu : null;
    const wait = stat && lastStat ? stat.wait - lastStat.wait : null;
    if (extra > 20) stalls.push(`${extra.toFixed(0)}ms@${(now - t0).toFixed(0)}${cpu !== null ? `(cpu ${cpu.toFixed(0)}, wait ${wait!.toFixed(0)})` : ""}`);
    if (extra > worstMs) { worstMs = extra; worstCpuMs = cpu; worstRunqueueMs = wait; }
    if (wait !== null) worstBlockedMs = Math.max(worstBlockedMs ?? 0, extra - wait);
    last = now;
    lastStat = stat;
  }, 5);
  try {
    await work();
  } finally {
    clearInterval(tick);
    h.disable();
  }
  return { ms: performance.now() - t0, worstMs, worstCpuMs, worstRunqueueMs, worstBlockedMs, histogramMaxMs: h.max / 1e6, stalls };
}

export function describeLoop(s: LoopStats): string {
  const f = (v: number | null): string => (v === null ? "n/a" : v.toFixed(1));
  return `worst timer delay ${s.worstMs.toFixed(1)} ms (main thread: cpu ${f(s.worstCpuMs)} ms, waiting for a CPU ${f(s.worstRunqueueMs)} ms), ` +
    `worst delay not spent waiting for a CPU ${f(s.worstBlockedMs)} ms, monitorEventLoopDelay max ${s.histogramMaxMs.toFixed(1)} ms, ` +
    `${s.ms.toFixed(0)} ms total [${s.stalls.join(" ")}]`;
}
