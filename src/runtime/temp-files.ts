import { readdirSync, rmSync } from "node:fs";
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
// rest of the time (no listener: the default action ends the process even while onnxruntime's
// session.run holds the main thread); onnxruntime blocks the main thread while it creates a
// session, so a signal that arrives then is handled once creation returns.
//
// Removing them is the delicate part. libuv's C handler only writes a caught signal into the
// loop's signal pipe and the listener runs when a poll phase reads it; removing the last listener
// restores the default action but drops a signal still unread in the pipe (the run then goes on as
// if nothing happened). So the handlers go once the pipe has been read since the last copy went (a
// signal caught during session creation then exits) and before anything blocks the thread again:
// onnxruntime runs session.run synchronously inside a setImmediate, and a removal queued behind
// it left the handlers in place during the first run, to drop the signal caught there. The removal
// is a setImmediate queued as the last copy goes, ahead of that run; a witness signal raised at the
// same moment tells it whether a poll phase has read the pipe since (signals are read in order):
// if not, it waits one more turn, whose poll phase does.
let signalExit: ((line: string) => void) | undefined;
const handlers = new Map<NodeJS.Signals, () => void>();
/** Harmless signal (ignored by default, unused by Node) sent to this process to learn when its signal pipe was read. */
const WITNESS: NodeJS.Signals = "SIGURG";
let witnessListening = false;
/** The latest removal request; `drained` once a witness was dispatched after it was made. */
let removal: { drained: boolean } | undefined;

/**
 * The CLI's SIGINT/SIGTERM handling: while a temp copy exists, a signal removes it, prints one line
 * and exits 130 (SIGINT) or 143 (SIGTERM).
 */
export function exitOnSignalsRemovingTempFiles(write: (line: string) => void = (l) => void process.stderr.write(l)): void {
  signalExit = write;
  if (live.size) installSignalHandlers();
}

/** Whether this process's SIGINT/SIGTERM handlers are installed (tests). */
export function signalHandlersInstalled(): boolean {
  return handlers.size > 0;
}

function installSignalHandlers(): void {
  if (!signalExit || handlers.size) return;
  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    const handler = (): void => {
      // The handlers outlive the last copy by up to a loop turn: the line only when one had to go.
      if (live.size) {
        removeLiveTempFiles();
        signalExit?.(`onnx-doctor: cancelled: stopped by ${signal}\n`);
      }
      process.exit(code);
    };
    handlers.set(signal, handler);
    process.on(signal, handler);
  }
}

function uninstallSignalHandlers(): void {
  const request = { drained: false };
  removal = request;
  raiseWitness();
  setImmediate(() => {
    if (request !== removal || live.size) return;
    if (request.drained) removeSignalHandlers();
    // Asked for in a poll phase (or no witness): the next turn's poll phase reads the pipe.
    else setImmediate(() => request === removal && removeSignalHandlers());
  });
}

function removeSignalHandlers(): void {
  if (live.size) return;
  removal = undefined;
  for (const [signal, handler] of handlers) process.removeListener(signal, handler);
  handlers.clear();
}

/** Sends the witness signal to this process (none on Windows: the removal then always waits a turn). */
function raiseWitness(): void {
  if (process.platform === "win32") return;
  try {
    if (!witnessListening) {
      // Kept for the process's life: removing it could drop a witness still in the pipe.
      process.on(WITNESS, () => void (removal && (removal.drained = true)));
      witnessListening = true;
    }
    process.kill(process.pid, WITNESS);
  } catch {
    // no witness: the removal waits a turn
  }
}
