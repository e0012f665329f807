import { realpathSync, statSync } from "node:fs";
import { availableParallelism } from "node:os";
import { dirname, isAbsolute, relative, resolve, sep } from "node:path";
import { InvalidArgumentError } from "commander";

/** A command line that cannot run as given (exit 2, `onnx-doctor: usage: <reason>`), found after commander parsed it. */
export class UsageError extends Error {
  readonly code = "usage";
}

// Option parsers shared by `analyze` and `gradcheck`: a value is refused (exit 2, one line) when it
// could only be a typo or would run away.

export const positiveInt = (v: string): number => {
  // Number() also reads 0x10 and 0b11; a count written that way is a typo.
  const n = /^\s*0[xob]/i.test(v) ? NaN : Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError("must be a positive integer");
  return n;
};

export const seedValue = (v: string): number => {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError("must be a non-negative integer");
  return n;
};

/**
 * Most onnxruntime intra-op threads we start: max(64, 4 x the cores). More only adds start-up and
 * contention (1,024 threads took 90 s on a 2-core machine; 100,000 never finished).
 */
export function maxThreads(): number {
  return Math.max(64, 4 * availableParallelism());
}

export const threadCount = (v: string): number => {
  const n = positiveInt(v);
  const max = maxThreads();
  if (n > max) throw new InvalidArgumentError(`must be at most ${max} (the larger of 64 and 4 x the ${availableParallelism()} cores here): more threads than cores only slow onnxruntime down`);
  return n;
};

export const keyValue = (v: string, prev: Record<string, number> = {}): Record<string, number> => {
  // Split at the last "=": the value is a number, so every "=" before it belongs to the name
  // (symbolic dimensions and input names may contain one).
  const m = /^(.+)=(-?[\d.e+-]+)$/.exec(v);
  if (!m || !Number.isFinite(Number(m[2]))) throw new InvalidArgumentError(`expected name=number, got "${v}"`);
  // A repeat that disagrees is a mistake in the command (a script that adds its own value); which one wins would be a guess.
  if (m[1] in prev && prev[m[1]] !== Number(m[2])) throw new InvalidArgumentError(`${m[1]} is given twice, as ${prev[m[1]]} and ${m[2]}; give it once`);
  return { ...prev, [m[1]]: Number(m[2]) };
};

export const dimValue = (v: string, prev: Record<string, number> = {}): Record<string, number> => {
  const next = keyValue(v, prev);
  const [name, value] = Object.entries(next).find(([k]) => !(k in prev)) ?? Object.entries(next).pop()!;
  if (!Number.isSafeInteger(value) || value < 1) throw new InvalidArgumentError(`dimension ${name} must be a positive integer, got ${value}`);
  return next;
};

/** A finite positive number (a finite-difference step). */
export const positiveNumber = (v: string): number => {
  const n = Number(v);
  if (!(Number.isFinite(n) && n > 0)) throw new InvalidArgumentError("must be a finite positive number");
  return n;
};

/** Most probe batches one run may ask for: more is a typo (1e9 ran until killed), not a probe. */
export const MAX_BATCHES = 100_000;

export const batchCount = (v: string): number => {
  const n = positiveInt(v);
  if (n > MAX_BATCHES) throw new InvalidArgumentError(`must be at most ${MAX_BATCHES.toLocaleString("en-US")}`);
  return n;
};

/** A finite-difference step: below 1e-12 even float64 differences are all rounding. */
export const stepValue = (v: string): number => {
  const n = positiveNumber(v);
  if (n < 1e-12) throw new InvalidArgumentError("must be at least 1e-12: smaller steps leave only rounding error, even in float64");
  // The step is epsilon x max(1, |value|): beyond 0.1 it moves a weight by a tenth of itself or
  // more, which measures a secant, not a derivative (and 1e300 overflows every loss to Inf).
  if (n > 0.1) throw new InvalidArgumentError("must be at most 0.1: the step is epsilon x max(1, |value|), so larger steps measure a secant, not the derivative");
  return n;
};

/** An output file whose folder exists, checked before the run rather than after it. */
export const outputFile = (v: string): string => {
  if (!v) throw new InvalidArgumentError("is empty");
  try {
    if (statSync(v).isDirectory()) throw new InvalidArgumentError("is a folder; give a file name");
  } catch (e) {
    if (e instanceof InvalidArgumentError) throw e;
    // missing: written after the run
  }
  const folder = dirname(resolve(v));
  let isFolder = false;
  try {
    isFolder = statSync(folder).isDirectory();
  } catch {
    // missing: reported below
  }
  if (!isFolder) throw new InvalidArgumentError(`the folder ${folder} does not exist`);
  return v;
};

/**
 * A parser for an option that takes one file (`--input`, `--labels`, ...): given twice with
 * different values, which one wins would be a guess (commander silently keeps the last), so refuse.
 */
export const singleValue = (then: (v: string) => string = (v) => v) => (v: string, prev?: string): string => {
  // The same file spelled two ways (a.txt, ./a.txt) is one file.
  if (prev !== undefined && resolve(prev) !== resolve(v)) throw new InvalidArgumentError(`The option was already given as ${prev}; give it once.`);
  return then(v);
};

/** The same file as `a` (same device and inode: hard links and symlinks included), or false when either is missing. */
function sameFile(a: { dev: number; ino: number }, b: string): boolean {
  try {
    const s = statSync(b);
    return s.dev === a.dev && s.ino === a.ino;
  } catch {
    return false;
  }
}

/**
 * Refuses, before anything runs, an `--out` that is one of the files the run reads: the model,
 * its external data files, `--input`, `--labels`, `--train-data`, `--val-data`. Writing the report
 * there would destroy the file. Compared by device and inode, so `./../h/g.onnx`, hard links and
 * symlinks are caught; an `--out` that does not exist yet cannot be any of them.
 * `externalFiles(model)` lists the model's external data files; it is asked only when `--out`
 * exists inside the model's folder, the only place external data may live.
 */
export function refuseOverwrite(out: string | undefined, reads: ReadonlyArray<readonly [option: string, file: string | undefined]>, externalFiles?: (model: string) => Iterable<string>): void {
  if (out === undefined) return;
  let target: { dev: number; ino: number };
  try {
    target = statSync(out);
  } catch {
    return;
  }
  for (const [option, file] of reads) {
    if (file !== undefined && sameFile(target, file)) {
      throw new UsageError(`--out ${out} is the ${option === "model" ? "model" : `${option} file`} this run reads (${file}); writing the output there would overwrite it: choose another --out file`);
    }
  }
  const model = reads.find(([option]) => option === "model")?.[1];
  if (model === undefined || !externalFiles) return;
  let inside = false;
  try {
    const rel = relative(dirname(realpathSync(model)), realpathSync(out));
    // "..data.bin" is a file inside the folder; only ".." as a whole first segment leaves it.
    inside = rel !== ".." && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
  } catch {
    return;
  }
  if (!inside) return;
  let files: Iterable<string>;
  try {
    files = externalFiles(model);
  } catch {
    return; // an unreadable model is reported by the run itself
  }
  for (const file of files) {
    if (sameFile(target, file)) throw new UsageError(`--out ${out} is an external data file of the model ${model} (${file}); writing the output there would overwrite the weights: choose another --out file`);
  }
}
