#!/usr/bin/env node
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { batchCount, dimValue, keyValue, MAX_BATCHES, maxThreads, outputFile, positiveInt, refuseOverwrite, seedValue, singleValue, threadCount, UsageError } from "./options";
import { exitOnOutputErrors, externalDataFiles, OutputError, writeOut, writeStdout } from "./output";
import { analyze, DoctorError } from "../index";
import { oneLine } from "../onnx/errors";
import { toHtml } from "../report/html";
import { toMarkdown } from "../report/markdown";
import { toSarif } from "../report/sarif";
import { toText } from "../report/text";
import { toJson, type Report } from "../report/types";
import { registerGradcheck } from "./gradcheck";
import { startWatchdog } from "../runtime/watchdog";
import { exitOnSignalsRemovingTempFiles } from "../runtime/temp-files";
import { TOOL_VERSION } from "../version";

const program = new Command()
  .name("onnx-doctor")
  .description("Diagnose an ONNX neural network: weight initialisation, activations, dead/saturated units, NaN/Inf.")
  .version(TOOL_VERSION)
  // Usage errors exit 2 like every other failure to run, so CI can tell them from findings (exit 1).
  // Set before the subcommands are added: they inherit it.
  .exitOverride()
  // Usage errors look like every other failure: `onnx-doctor: usage: <reason>`, one line on stderr.
  .configureOutput({ outputError: (text, write) => write(`onnx-doctor: usage: ${text.replace(/^error: /, "")}`) });

program
  .command("analyze")
  .description("analyse a model from its weights and a forward probe")
  .argument("<model>", "path to an .onnx file")
  .addOption(new Option("-f, --format <format>", "output format").choices(["text", "json", "markdown", "sarif", "html"]).default("text"))
  .option("-o, --out <file>", "write the report to a file instead of stdout", singleValue(outputFile))
  .addOption(new Option("--fail-on <level>", "exit with 1 when a finding of this severity or worse exists").choices(["error", "warning", "never"]).default("error"))
  .option("--static", "only check the weights; do not run the model")
  .option("-i, --input <file>", "probe data: .npy for the first input, or .npz with one array per input name", singleValue())
  .option("--dim <name=value>", "value for a symbolic dimension (repeatable)", dimValue)
  .option("--fill <name=value>", "feed a constant to an input, e.g. --fill sr=16000 (repeatable)", keyValue)
  .option("-b, --batch-size <n>", "probe batch size", positiveInt)
  .option("--batches <n>", `number of probe batches (at most ${MAX_BATCHES.toLocaleString("en-US")})`, batchCount)
  .option("--seed <n>", "seed for synthetic probe data", seedValue)
  .option("--threads <n>", `onnxruntime intra-op threads (default: all cores; at most ${maxThreads()})`, threadCount)
  .option("--timeout <seconds>", "stop the analysis after this many seconds (one-line reason, exit 137)", positiveInt)
  .option("--max-memory <MB>", "stop the analysis when the process uses more memory (one-line reason, exit 137)", positiveInt)
  .addOption(new Option("--target <precision>", "precision the model will run in; fp16 adds float16 range checks").choices(["fp32", "fp16"]))
  .addOption(new Option("--loss <name>", "loss of the gradient probe: ce (cross-entropy vs --labels or random labels), mse (mean of squared outputs, or vs --labels), random (fixed random cotangent), none (no gradients); default ce with --labels, else random").choices(["ce", "mse", "random", "none"]))
  .option("--labels <file>", ".npy labels for the gradient probe: class ids for --loss ce, targets for mse; rows follow the probe data", singleValue())
  .option("--train-data <file>", "labelled training set (.npz: the inputs by name + \"labels\") for the bias/variance check", singleValue())
  .option("--val-data <file>", "labelled validation set (.npz, as --train-data)", singleValue())
  .option("--baseline-error <rate>", "error an ideal model still makes on the task (human-level), for the bias check; default 0", (v) => {
    const n = Number(v);
    if (!(n >= 0 && n < 1)) throw new InvalidArgumentError("must be a rate in [0, 1)");
    return n;
  })
  .action(async (model: string, opts: {
    format: "text" | "json" | "markdown" | "sarif" | "html"; out?: string; failOn: "error" | "warning" | "never"; static?: boolean; input?: string;
    dim?: Record<string, number>; fill?: Record<string, number>; batchSize?: number; batches?: number; seed?: number; threads?: number;
    target?: "fp32" | "fp16"; trainData?: string; valData?: string; baselineError?: number;
    loss?: "ce" | "mse" | "random" | "none"; labels?: string; timeout?: number; maxMemory?: number;
  }) => {
    startWatchdog({ timeoutSeconds: opts.timeout, maxMemoryMb: opts.maxMemory });
    if (!!opts.trainData !== !!opts.valData) throw new DoctorError("probe.input", "--train-data and --val-data go together: bias and variance come from comparing the two");
    if (opts.labels && (opts.loss === "none" || opts.loss === "random")) throw new DoctorError("probe.input", `--labels is used only by --loss ce or mse; --loss ${opts.loss} would ignore it`);
    if (opts.labels && !opts.input) throw new DoctorError("probe.input", "--labels needs --input: labels describe the rows of your probe data, and the synthetic probe rows have no true labels");
    if (opts.labels && opts.static) throw new DoctorError("probe.input", "--labels needs the probe, which --static turns off");
    if (opts.input && opts.static) throw new DoctorError("probe.input", "--input is probe data, and --static turns the probe off: give one or the other");
    // Every other probe option would be ignored under --static just as silently.
    const probeOnly = [["--train-data", opts.trainData], ["--val-data", opts.valData], ["--fill", opts.fill], ["--dim", opts.dim], ["--batch-size", opts.batchSize], ["--batches", opts.batches], ["--loss", opts.loss]] as const;
    const ignored = opts.static ? probeOnly.filter(([, v]) => v !== undefined).map(([name]) => name) : [];
    if (ignored.length) throw new DoctorError("probe.input", `${ignored.join(", ")} ${ignored.length === 1 ? "needs" : "need"} the probe, which --static turns off: give one or the other`);
    refuseOverwrite(opts.out, [["model", model], ["--input", opts.input], ["--labels", opts.labels], ["--train-data", opts.trainData], ["--val-data", opts.valData]], externalDataFiles);
    const interactive = process.stderr.isTTY;
    const report: Report = await analyze(model, {
      staticOnly: opts.static, inputFile: opts.input, dims: opts.dim, fill: opts.fill,
      batchSize: opts.batchSize, batches: opts.batches, seed: opts.seed, intraOpThreads: opts.threads,
      target: opts.target, trainData: opts.trainData, valData: opts.valData, baselineError: opts.baselineError,
      loss: opts.loss, labelsFile: opts.labels,
    }, { progress: interactive ? (f, msg) => process.stderr.write(`\r\x1b[K${msg}`) : undefined });
    if (interactive) process.stderr.write("\r\x1b[K");
    const text = render(report, opts.format, !opts.out && process.stdout.isTTY);
    if (opts.out) writeOut(opts.out, text);
    else writeStdout(text);
    const failing = opts.failOn === "never" ? 0 : opts.failOn === "warning" ? report.summary.errors + report.summary.warnings : report.summary.errors;
    process.exitCode = failing > 0 ? 1 : 0;
  });

function render(report: Report, format: "text" | "json" | "markdown" | "sarif" | "html", color: boolean): string {
  switch (format) {
    case "json": return toJson(report) + "\n";
    case "markdown": return toMarkdown(report);
    case "sarif": return toSarif(report, { baseDir: process.cwd() });
    case "html": {
      // The report page's script is the webview bundle, built next to this file.
      const bundle = join(__dirname, "webview.js");
      return toHtml(report, existsSync(bundle) ? { script: readFileSync(bundle, "utf8") } : {});
    }
    default: return toText(report, { color });
  }
}

registerGradcheck(program);

// Ctrl-C or a SIGTERM while a temp model copy exists removes it (exit 130/143, one line).
exitOnSignalsRemovingTempFiles();
// A failed write to stdout (a full disk, a closed pipe) is one line or a quiet exit, not a stack trace.
exitOnOutputErrors();

program.parseAsync(process.argv).catch((e: unknown) => {
  if (e instanceof CommanderError) {
    // commander has already printed the usage error (or the help / version text, exit 0).
    process.exitCode = e.exitCode === 0 ? 0 : 2;
    return;
  }
  // One line, no stack: the user needs the reason, not our call chain.
  const code = e instanceof DoctorError || e instanceof UsageError || e instanceof OutputError ? e.code : "error";
  process.stderr.write(`onnx-doctor: ${code}: ${oneLine(e)}\n`);
  process.exitCode = 2;
});
