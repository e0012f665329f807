import { Option, type Command } from "commander";
import { checkGradients, type GradcheckResult } from "../autodiff/gradcheck";
import { LOSS_NAMES, type LossName } from "../autodiff/loss";
import { fmt } from "../rules/rule";
import { startWatchdog } from "../runtime/watchdog";
import { DoctorError } from "../onnx/errors";
import { dimValue, keyValue, maxThreads, outputFile, positiveInt, refuseOverwrite, seedValue, singleValue, stepValue, threadCount } from "./options";
import { externalDataFiles, writeOut, writeStdout } from "./output";

/**
 * `onnx-doctor gradcheck model.onnx`: the seed's gradient checking. Exit code 0 when every checked
 * tensor grades good or "look closer", 1 when one is wrong or has no gradient, 2 when the check
 * cannot run (training-mode Dropout without --allow-dropout, unreadable model).
 */
export function registerGradcheck(program: Command): void {
  program
    .command("gradcheck")
    .description("check the generated backward graph against central finite differences (gradient checking: relative difference per parameter tensor)")
    .argument("<model>", "path to an .onnx file")
    .addOption(new Option("-f, --format <format>", "output format").choices(["text", "json"]).default("text"))
    .option("-o, --out <file>", "write the result to a file instead of stdout", singleValue(outputFile))
    .option("-i, --input <file>", "probe data: .npy for the first input, or .npz with one array per input name", singleValue())
    .option("--dim <name=value>", "value for a symbolic dimension (repeatable)", dimValue)
    .option("--fill <name=value>", "feed a constant to an input (repeatable)", keyValue)
    .option("-b, --batch-size <n>", "rows of the probe batch (default 2)", positiveInt)
    .option("--seed <n>", "seed of the synthetic data and of the sampled elements", seedValue)
    .addOption(new Option("--loss <name>", "loss to differentiate (default: ce with --labels, else random)").choices([...LOSS_NAMES]))
    .option("--labels <file>", ".npy labels for --loss ce (class ids) or mse (targets)", singleValue())
    .option("--samples <n>", "elements checked per tensor (a seeded random subset; default 8)", positiveInt)
    .addOption(new Option("--precision <p>", "float64 when onnxruntime can run the model in double (default auto)").choices(["auto", "float64", "float32"]).default("auto"))
    .option("--epsilon <e>", "finite-difference step (default 1e-6 in float64, 1e-3 in float32; 1e-12 to 0.1)", stepValue)
    .option("--allow-dropout", "check although Dropout runs in training mode (the result is then meaningless)")
    .option("--threads <n>", `onnxruntime intra-op threads (at most ${maxThreads()})`, threadCount)
    .option("--no-progress", "do not report progress on stderr")
    .option("--timeout <seconds>", "stop after this many seconds (one-line reason, exit 137)", positiveInt)
    .option("--max-memory <MB>", "stop when the process uses more memory (one-line reason, exit 137)", positiveInt)
    .action(async (model: string, opts: {
      format: "text" | "json"; out?: string; input?: string; dim?: Record<string, number>; fill?: Record<string, number>; batchSize?: number;
      seed?: number; loss?: LossName; labels?: string; samples?: number; precision: "auto" | "float64" | "float32"; epsilon?: number;
      allowDropout?: boolean; threads?: number; progress: boolean; timeout?: number; maxMemory?: number;
    }) => {
      if (opts.labels && opts.loss === "random") throw new DoctorError("probe.input", "--labels is used only by --loss ce or mse; --loss random would ignore it");
      if (opts.labels && !opts.input) throw new DoctorError("probe.input", "--labels needs --input: labels describe the rows of your probe data, and the synthetic probe rows have no true labels");
      refuseOverwrite(opts.out, [["model", model], ["--input", opts.input], ["--labels", opts.labels]], externalDataFiles);
      startWatchdog({
        timeoutSeconds: opts.timeout, maxMemoryMb: opts.maxMemory,
        hint: { what: "gradient check", timeout: "try fewer --samples", memory: "try a smaller --batch-size" },
      });
      // Progress goes to stderr, one line per step (`gradcheck 40% tensor 7/15: ...`; the editor
      // parses these), or rewritten in place at a terminal; stdout carries only the result.
      const interactive = process.stderr.isTTY;
      const result = await checkGradients(model, {
        inputFile: opts.input, dims: opts.dim, fill: opts.fill, batchSize: opts.batchSize, seed: opts.seed, loss: opts.loss,
        labelsFile: opts.labels, samples: opts.samples, precision: opts.precision, epsilon: opts.epsilon,
        allowTrainingDropout: opts.allowDropout, intraOpThreads: opts.threads,
        progress: opts.progress ? (f, msg) => process.stderr.write(`${interactive ? "\r\x1b[K" : ""}${progressLine(f, msg)}${interactive ? "" : "\n"}`) : undefined,
      });
      if (opts.progress && interactive) process.stderr.write("\r\x1b[K");
      const text = opts.format === "json" ? JSON.stringify(result, (_k, v: unknown) => (typeof v === "number" && !Number.isFinite(v) ? null : v), 2) + "\n" : gradcheckText(result);
      if (opts.out) writeOut(opts.out, text);
      else writeStdout(text);
      process.exitCode = result.checks.some((c) => c.grade === "wrong" || c.grade === "no gradient") ? 1 : 0;
    });
}

/** One progress line on stderr: `gradcheck <percent>% <what it is doing>`. */
export function progressLine(fraction: number, message: string): string {
  return `gradcheck ${Math.floor(Math.max(0, Math.min(1, fraction)) * 100)}% ${message.replace(/[\r\n]+/g, " ")}`;
}

/** The terminal form: how it was checked, one row per tensor, the verdict. */
export function gradcheckText(r: GradcheckResult & { model: string; batchSize: number }): string {
  const lines: string[] = [];
  lines.push(`gradient check of ${r.model}: ${r.checks.length} tensors, batch of ${r.batchSize}, ${fmt(r.seconds)} s`);
  lines.push(`precision: ${r.precisionNote}; central differences with epsilon ${r.epsilon}`);
  lines.push(`loss: ${r.loss.name} = ${fmt(r.loss.value)} (${r.loss.definition})`);
  lines.push(`difference = ||analytic - numeric|| / (||analytic|| + ||numeric||); good <= ${r.tolerance.good}, wrong >= ${r.tolerance.wrong}${r.precision === "float64" ? " (the classic gradient-checking grades)" : " (float32: the classic 1e-7/1e-3 grades assume float64)"}`);
  lines.push("resolution = what the comparison resolves, relative to ||analytic|| + ||numeric|| like the difference (above 1: the noise is larger than the gradient itself): the finite differences' own error (|D(eps) - D(2 eps)|, at least the outputs' rounding) and the backward graph's rounding noise; a difference within 3x of it is no evidence of a wrong derivative and grades good, unless 3x the resolution reaches the wrong grade: then the check cannot tell and says look closer");
  for (const w of r.warnings) lines.push(`warning: ${w}`);
  if (r.constants.length) lines.push(`not checked (not learned: running statistics, exponents, and initializers from which no float path leads to an output): ${r.constants.join(", ")}`);
  if (r.unsupported.length) lines.push(`no gradient rule for: ${[...new Set(r.unsupported.map((u) => `${u.op} (${u.reason})`))].join("; ")}`);
  lines.push("");
  const rows = [["tensor", "layer", "kind", "checked", "difference", "resolution", "grade"]];
  for (const c of r.checks) {
    rows.push([c.tensor, c.layer ?? "", c.kind, `${c.checked}/${c.size}`, c.unavailable ? "-" : fmt(c.difference), c.unavailable ? "-" : fmt(c.resolution), c.unavailable ? `no gradient: ${c.unavailable}` : c.grade]);
  }
  const widths = rows[0].map((_, i) => Math.min(48, Math.max(...rows.map((row) => row[i].length))));
  for (const row of rows) lines.push(row.map((cell, i) => (i === row.length - 1 ? cell : cell.length > widths[i] ? `${cell.slice(0, widths[i] - 1)}…` : cell.padEnd(widths[i]))).join("  "));
  const count = (g: string): number => r.checks.filter((c) => c.grade === g).length;
  lines.push("");
  const none = count("no gradient");
  lines.push(`${count("good")} good, ${count("look closer")} look closer, ${count("wrong")} wrong${none ? `, ${none} with no gradient to check (no rule for an op on the way to the loss)` : ""}`);
  // What to do with "look closer": the check could not tell, which in float32 is mostly its own resolution.
  if (count("look closer") > 0 && count("wrong") === 0) {
    lines.push(r.precision === "float32"
      ? "look closer: in float32 the finite differences could not separate these from the wrong grade (none was clearly wrong); compare their difference with the resolution column, and settle them with more elements per tensor (--samples 32) or another --epsilon; a float64 check needs every op to have a double kernel in onnxruntime"
      : "look closer: the difference is between the good and wrong grades; rerun with more elements per tensor (--samples 32) or another --epsilon to settle them");
  }
  return lines.join("\n") + "\n";
}
