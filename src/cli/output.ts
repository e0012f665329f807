import { writeFileSync } from "node:fs";
import { loadModel } from "../onnx/load";
import { oneLine } from "../onnx/errors";

/** Exit code when the reader of stdout went away (EPIPE): 128 + SIGPIPE, what a shell reports for `yes | head -1`. */
export const EXIT_BROKEN_PIPE = 141;

/** A write of the output (stdout or `--out`) that failed: one line, `onnx-doctor: output: <reason>`, exit 2. */
export class OutputError extends Error {
  readonly code = "output";
}

/**
 * Makes a failed write to stdout one line instead of Node's "Unhandled 'error' event" stack.
 * EPIPE (the reader closed the pipe: `onnx-doctor analyze m.onnx | head -c1`) exits silently with
 * 141, as a program killed by SIGPIPE does (Node ignores SIGPIPE, so it sees EPIPE instead): the
 * reader wanted no more, which is not our error to report, and `set -o pipefail` still sees it.
 * Any other failure (`> /dev/full`: ENOSPC, EIO) prints `onnx-doctor: output: cannot write to
 * stdout (<reason>)` and exits 2. A failing stderr is ignored: there is nowhere left to say so.
 */
export function exitOnOutputErrors(): void {
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") process.exit(EXIT_BROKEN_PIPE);
    process.stderr.write(`onnx-doctor: output: cannot write to stdout (${oneLine(e)})\n`);
    process.exit(2);
  });
  process.stderr.on("error", () => undefined);
}

/** Writes the output to stdout; a failure is reported by {@link exitOnOutputErrors}. */
export function writeStdout(text: string): void {
  process.stdout.write(text);
}

/** Writes the output to the `--out` file, a failure as one {@link OutputError} line naming the file. */
export function writeOut(file: string, text: string): void {
  try {
    writeFileSync(file, text);
  } catch (e) {
    throw new OutputError(`cannot write --out ${file} (${oneLine(e)})`);
  }
}

/** The external data files of a model (absolute paths); loading reads only the graph, not the weights. */
export function externalDataFiles(model: string): Iterable<string> {
  return loadModel(model).externalFiles.values();
}
