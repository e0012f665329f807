import { access, readdirSync, rmSync } from "node:fs";
import { basename, join } from "node:path";

/** Prefix of the engine's short-lived model copies (written next to big models for onnxruntime). */
export const TEMP_PREFIX = ".onnx-doctor-";

/** Whether a path is one of the engine's temporary model copies (editors should ignore them). */
export function isEngineTempFile(path: string): boolean {
  return basename(path).startsWith(TEMP_PREFIX);
}

/** `.onnx-doctor-<pid>-<random>.onnx`: the pid says which process owns the copy. */
const TEMP_NAME = /^\.onnx-doctor-(\d+)-[^/\\]*\.onnx$/;

/** A fresh temp-copy name for this process. */
export function tempFileName(): string {
  return `${TEMP_PREFIX}${process.pid}-${Math.random().toString(36).slice(2)}.onnx`;
}

// The copies that exist right now. A process can be stopped while one exists: the watchdog thread
// (src/runtime/watchdog.ts) removes them before it kills the process, the CLI's SIGINT/SIGTERM
// handler and process.exit remove them, and anything left by a SIGKILL from outside is swept by
// the next run that writes a copy into the same folder.
const live = new Set<string>();
type Listener = (change: { added?: string; removed?: string }) => void;
const listeners = new Set<Listener>();
let exitHook = false;

/** Records a temp copy before it is written, so a stop at any moment can remove it. */
export function registerTempFile(path: string): void {
  live.add(path);
  if (!exitHook) {
    exitHook = true;
    process.on("exit", removeLiveTempFiles);
  }
  installSignalHandlers();
  for (const l of listeners) l({ added: path });
}

/** Removes a temp copy and forgets it. */
export function removeTempFile(path: string): void {
  try {
    rmSync(path, { force: true });
  } finally {
    live.delete(path);
    if (!live.size && handlers.size) uninstallSignalHandlers();
    for (const l of listeners) l({ removed: path });
  }
}

/** The temp copies that exist now (for a watchdog started while one does). */
export function liveTempFiles(): string[] {
  return [...live];
}

/** Called on every register/remove (the watchdog forwards them to its thread). Returns an unsubscribe function. */
export function onTempFilesChange(listener: Listener): () => void {
  listeners.add(listener);
  return () => void listeners.delete(listener);
}

/** Removes every live temp copy, synchronously (exit and signal paths); never throws. */
export function removeLiveTempFiles(): void {
  for (const path of live) {
    try {
      rmSync(path, { force: true });
    } catch {
      // best effort: the process is stopping
    }
  }
  live.clear();
}

/** Whether process `pid` exists (EPERM: it does, under another user). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== "ESRCH";
  }
}

/**
 * Removes the temp copies in `folder` left by processes that no longer exist (a SIGKILL from an
 * editor or the OOM killer gives no chance to clean up). Copies of live processes, including this
 * one, are left alone. Returns the names removed.
 */
export function sweepStaleTempFiles(folder: string): string[] {
  let names: string[];
  try {
    names = readdirSync(folder);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = TEMP_NAME.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid || processAlive(pid)) continue;
    try {
      rmSync(join(folder, name), { force: true });
      removed.push(name);
    } catch {
      // not ours to remove (permissions): leave it
    }
  }
  return removed;
}

// SIGINT/SIGTERM: the CLI opts in (an editor's worker process is killed with SIGKILL and relies on
// the sweep). The handlers are installed only while a copy exists, so Ctrl-C stays immediate the
// rest of the time; onnxruntime blocks the main thread while it creates a session, so a signal
// that arrives then is handled once creation returns.
let signalExit: ((line: string) => void) | undefined;
const handlers = new Map<NodeJS.Signals, () => void>();

/**
 * The CLI's SIGINT/SIGTERM handling: while a temp copy exists, a signal removes it, prints one line
 * and exits 130 (SIGINT) or 143 (SIGTERM).
 */
export function exitOnSignalsRemovingTempFiles(write: (line: string) => void = (l) => void process.stderr.write(l)): void {
  signalExit = write;
  if (live.size) installSignalHandlers();
}

function installSignalHandlers(): void {
  if (!signalExit || handlers.size) return;
  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    const handler = (): void => {
      removeLiveTempFiles();
      signalExit?.(`onnx-doctor: cancelled: stopped by ${signal}\n`);
      process.exit(code);
    };
    handlers.set(signal, handler);
    process.on(signal, handler);
  }
}

function uninstallSignalHandlers(): void {
  // A signal that arrived while onnxruntime held the main thread waits in libuv's signal pipe and
  // is read in the next poll phase; removing the handler before that would drop it (and Ctrl-C
  // would be ignored). An I/O callback runs in a poll phase that has read the pipe, so the
  // handlers go in the check phase right after one.
  access(process.execPath, () => setImmediate(() => {
    if (live.size) return;
    for (const [signal, handler] of handlers) process.removeListener(signal, handler);
    handlers.clear();
  }));
}
