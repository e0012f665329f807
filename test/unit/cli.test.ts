import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { copyFileSync, linkSync, mkdirSync, mkdtempSync, openSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { attr, externalTensor, floatTensor, graph, modelBytes, node, rawTensor, DT, valueInfo } from "./build-model";
import { dimValue, keyValue, refuseOverwrite } from "../../src/cli/options";
import { FIXTURES, npyBytes } from "./helpers";

const int64Tensor = (name: string, dims: number[], values: number[]) => rawTensor(name, DT.INT64, dims, new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer));

const CLI = join(__dirname, "..", "..", "dist", "cli.js");
const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: 60_000 });
const model = (stem: string): string => join(FIXTURES, `${stem}.onnx`);

describe("onnx-doctor CLI", () => {
  it("prints the textbook diagnosis of the tiny-init tanh MLP", () => {
    const p = run("analyze", model("tanh_tiny_init"));
    assert.equal(p.status, 0, p.stderr); // warnings only: --fail-on error passes
    assert.match(p.stdout, /warning\s+activation\.vanishing\s+layers\.16/);
    assert.match(p.stdout, /activation std falls from 0\.1\d+ \(layers\.0\) to \S+e-\d+ \(layers\.16\)/);
    assert.match(p.stdout, /init\.scale-small\s+layers\.0\n.*weight std 0\.01\d* is 0\.11\dx the Xavier std 0\.0884/);
  });

  it("writes versioned JSON with the fields other tools rely on", () => {
    const out = join(mkdtempSync(join(tmpdir(), "cli-")), "r.json");
    const p = run("analyze", model("dead_relu"), "-f", "json", "-o", out, "--batch-size", "4", "--batches", "3", "--seed", "7");
    assert.equal(p.status, 1, "dead units are an error, so --fail-on error fails");
    const r = JSON.parse(readFileSync(out, "utf8"));
    assert.equal(r.schemaVersion, 1);
    for (const k of ["path", "sha256", "irVersion", "opsets", "producer", "parameterCount", "nodeCount"]) assert.ok(k in r.model, `model.${k}`);
    assert.equal(r.model.parameterCount, 64 * 128 + 128 + 2 * (128 * 128 + 128) + 128 * 10 + 10);
    assert.deepEqual([r.probe.batchSize, r.probe.batches, r.probe.seed, r.probe.inputs[0].shape], [4, 3, 7, [4, 64]]);
    const dead = r.findings.find((f: { category: string }) => f.category === "activation.dead");
    assert.equal(dead.layer, "layers.2");
    assert.equal(dead.evidence.silentInputFrom, null);
    // layers.4 is dead only because layers.2 feeds it zeros: its fix points upstream, not at its own bias of 0.
    const downstream = r.findings.find((f: { category: string; layer: string }) => f.category === "activation.dead" && f.layer === "layers.4");
    assert.equal(downstream.evidence.silentInputFrom, "layers.2");
    assert.match(downstream.fix, /^Fix layers\.2 first/);
    const layer = r.layers.find((l: { name: string }) => l.name === "layers.2");
    assert.deepEqual([layer.activation.deadUnits, layer.activation.units], [128, 128]);
    assert.equal(layer.activation.histogram.counts.length, 32);
  });

  it("--fail-on controls the exit code; markdown has the findings and the layer table", () => {
    assert.equal(run("analyze", model("tanh_tiny_init"), "--fail-on", "warning").status, 1);
    const zero = run("analyze", model("zero_mlp"), "--fail-on", "never", "-f", "json");
    assert.equal(zero.status, 0);
    // Units silenced by all-zero weights: the fix points at the weights, not at the bias.
    const dead = JSON.parse(zero.stdout).findings.filter((f: { category: string }) => f.category === "activation.dead");
    assert.ok(dead.length > 0 && dead.every((f: { fix: string }) => /^All weights of this layer are equal \(0\)/.test(f.fix)), JSON.stringify(dead.map((f: { fix: string }) => f.fix)));
    const md = run("analyze", model("zero_mlp"), "-f", "markdown", "--static");
    assert.match(md.stdout, /## Findings \(3 errors/);
    assert.match(md.stdout, /\| 0 \| layers\.0 \| Gemm \| relu \|/);
    // Node names carrying HTML stay inert text; ordinary '>' in messages is left readable.
    const hostile = run("analyze", model("hostile_names"), "-f", "markdown", "--static").stdout;
    assert.match(hostile, /&lt;img src=x onerror=/);
    assert.doesNotMatch(hostile, /<img/);
    assert.doesNotMatch(hostile, /&gt;/);
  });

  it("writes SARIF 2.1.0 and a standalone HTML report", () => {
    const sarif = JSON.parse(run("analyze", model("dead_relu"), "-f", "sarif").stdout);
    assert.equal(sarif.version, "2.1.0");
    const json = JSON.parse(run("analyze", model("dead_relu"), "-f", "json").stdout);
    assert.equal(sarif.runs[0].results.length, json.findings.length);
    assert.ok(sarif.runs[0].results.some((r: { ruleId: string; level: string }) => r.ruleId === "activation.dead" && r.level === "error"));
    const html = run("analyze", model("dead_relu"), "-f", "html").stdout;
    assert.match(html, /^<!DOCTYPE html>/i);
    assert.match(html, /Content-Security-Policy/);
    assert.doesNotMatch(html, /<script[^>]+src=|<link[^>]+href="http/i, "no network resources");
  });

  it("--timeout and --max-memory stop a long or hungry analysis with one line", () => {
    // 12 chained [8,1024,1024] x [1024,1024] MatMuls: many seconds of work at the default batch.
    const dir = mkdtempSync(join(tmpdir(), "cli-"));
    const nodes = Array.from({ length: 12 }, (_, i) => node("MatMul", [i ? `h${i - 1}` : "e", "w"], [i === 11 ? "y" : `h${i}`]));
    const g = graph([node("Expand", ["x", "shape"], ["e"]), ...nodes], [floatTensor("w", [1024, 1024], new Array(1024 * 1024).fill(0.001)), int64Tensor("shape", [3], [1, 1024, 1024])],
      [valueInfo("x", ["batch", 1, 1024])], [valueInfo("y", ["batch", 1024, 1024])]);
    const path = join(dir, "slow.onnx");
    writeFileSync(path, modelBytes(g));
    const started = Date.now();
    const slow = run("analyze", path, "--timeout", "2");
    assert.equal(slow.status, null, "killed");
    assert.match(slow.stderr, /^onnx-doctor: timeout: analysis stopped after 2 s \(--timeout\)/);
    assert.ok(Date.now() - started < 15_000, "stopped promptly");
    const hungry = run("analyze", path, "--max-memory", "64");
    assert.match(hungry.stderr, /^onnx-doctor: memory: analysis stopped at \d+ MB resident, above --max-memory 64 MB/);
  });

  it("names the first node that produces NaN", () => {
    const r = JSON.parse(run("analyze", model("nan_weight"), "-f", "json").stdout);
    const nf = r.findings.find((f: { category: string }) => f.category === "numeric.nonfinite");
    assert.equal(nf.node, "/layers/layers.4/Gemm");
    assert.match(nf.message, /; its constant input layers\.4\.weight already holds NaN\/Inf \(a weight stored that way: replace it\)\./);
    assert.ok(r.findings.some((f: { category: string; layer: string }) => f.category === "weights.nonfinite" && f.layer === "layers.4"));
  });

  it("rejects bad options and bad probe data with one line", () => {
    const bad = run("analyze", model("tanh_tiny_init"), "--batch-size", "0");
    assert.equal(bad.status, 2, "usage errors exit 2, findings exit 1");
    assert.match(bad.stderr, /must be a positive integer/);
    assert.equal(run("analyze", model("tanh_tiny_init"), "--format", "xml").status, 2);
    assert.equal(run("analyze", model("tanh_tiny_init"), "--bogus").status, 2);
    assert.equal(run("--version").status, 0);
    const labelsOnly = run("analyze", model("tanh_tiny_init"), "--labels", join(FIXTURES, "tanh_tiny_init.probe.npy"));
    assert.equal(labelsOnly.status, 2);
    assert.match(labelsOnly.stderr, /--labels needs --input/);
    const labelsIgnored = run("analyze", model("tanh_tiny_init"), "--loss", "none", "--labels", join(FIXTURES, "tanh_tiny_init.probe.npy"));
    assert.match(labelsIgnored.stderr, /--labels is used only by --loss ce or mse/);
    const wrongShape = run("analyze", model("resnet_bn"), "--input", join(FIXTURES, "tanh_tiny_init.probe.npy"));
    assert.equal(wrongShape.status, 2);
    assert.match(wrongShape.stderr, /^onnx-doctor: probe\.input: tanh_tiny_init\.probe\.npy: "input" has shape \[16,128\] but the model expects rank 4/);
    const badDim = run("analyze", model("resnet_bn"), "--dim", "H=3");
    assert.match(badDim.stderr, /--dim H: the model has no dimension named "H"; its symbolic dimensions are: batch/);
  });

  it("converts numpy's default float64 data to a float32 input and says so; refuses bool data with the numpy fix", () => {
    const dir = mkdtempSync(join(tmpdir(), "doctor-cli-dtype-"));
    const f64 = join(dir, "x64.npy");
    const values = Float64Array.from({ length: 16 * 128 }, (_, i) => Math.sin(i));
    writeFileSync(f64, npyBytes("<f8", [16, 128], values));
    const f32 = join(dir, "x32.npy");
    writeFileSync(f32, npyBytes("<f4", [16, 128], Float32Array.from(values)));
    const a = run("analyze", model("tanh_tiny_init"), "--input", f64, "-f", "json");
    const b = run("analyze", model("tanh_tiny_init"), "--input", f32, "-f", "json");
    const ra = JSON.parse(a.stdout);
    const rb = JSON.parse(b.stdout);
    assert.deepEqual(ra.probe.notes, ['x64.npy: "input" converted from float64 to float32, the model\'s type']);
    // The same float32 values either way: identical statistics.
    assert.deepEqual(ra.layers.map((l: { activation: { std: number } }) => l.activation.std), rb.layers.map((l: { activation: { std: number } }) => l.activation.std));
    const bools = join(dir, "xb.npy");
    writeFileSync(bools, npyBytes("|b1", [16, 128], new Uint8Array(16 * 128)));
    const c = run("analyze", model("tanh_tiny_init"), "--input", bools);
    assert.equal(c.status, 2);
    assert.match(c.stderr, /xb\.npy: "input" is bool but the model expects float32; save it with x\.astype\(numpy\.float32\)/);
  });

  it("prefixes usage errors like every other error and checks labels against the probe rows", () => {
    const bogus = run("gradcheck", model("tanh_tiny_init"), "--bogus");
    assert.equal(bogus.status, 2);
    assert.equal(bogus.stderr, "onnx-doctor: usage: unknown option '--bogus'\n");
    const hugeStep = run("gradcheck", model("tanh_tiny_init"), "--epsilon", "1e300");
    assert.equal(hugeStep.status, 2);
    assert.match(hugeStep.stderr, /^onnx-doctor: usage: option '--epsilon <e>' argument '1e300' is invalid\. must be at most 0\.1/);
    const twice = run("analyze", model("tanh_tiny_init"), "--dim", "batch=4", "--dim", "batch=5");
    assert.equal(twice.status, 2);
    assert.match(twice.stderr, /batch is given twice, as 4 and 5; give it once/);
    const labelsOnly = run("gradcheck", model("tanh_tiny_init"), "--labels", join(FIXTURES, "tanh_tiny_init.probe.npy"));
    assert.equal(labelsOnly.status, 2);
    assert.match(labelsOnly.stderr, /^onnx-doctor: probe\.input: --labels needs --input/);
    // The probe data has 16 rows; 17 labels cannot pair with them.
    const labels = join(mkdtempSync(join(tmpdir(), "cli-")), "y17.npy");
    writeFileSync(labels, npyBytes("<i8", [17], BigInt64Array.from({ length: 17 }, (_, i) => BigInt(i % 10))));
    for (const command of ["analyze", "gradcheck"]) {
      const p = run(command, model("tanh_tiny_init"), "--input", join(FIXTURES, "tanh_tiny_init.probe.npy"), "--labels", labels, ...(command === "gradcheck" ? ["--no-progress"] : []));
      assert.equal(p.status, 2, command);
      assert.match(p.stderr, /^onnx-doctor: probe\.input: y17\.npy has 17 rows of labels but the probe data has 16 rows/, command);
    }
  });

  it("refuses an --out that is a file the run reads (model, its external data, --input, --labels, --train-data, --val-data) before running, and leaves it intact", () => {
    const dir = mkdtempSync(join(tmpdir(), "cli-out-"));
    const victim = join(dir, "victim.onnx");
    copyFileSync(model("tanh_tiny_init"), victim);
    const probe = join(dir, "x.npy");
    copyFileSync(join(FIXTURES, "tanh_tiny_init.probe.npy"), probe);
    const labels = join(dir, "y.npy");
    writeFileSync(labels, npyBytes("<i8", [16], BigInt64Array.from({ length: 16 }, (_, i) => BigInt(i % 10))));
    linkSync(victim, join(dir, "hard.onnx"));
    symlinkSync("victim.onnx", join(dir, "sym.onnx"));
    mkdirSync(join(dir, "sub"));
    const before = readFileSync(victim);
    const refusal = (out: string, what: string, file: string) => `onnx-doctor: usage: --out ${out} is the ${what} this run reads (${file}); writing the output there would overwrite it: choose another --out file\n`;
    const cases: [string[], string, string, string][] = [
      [["analyze", victim], victim, "model", victim],
      [["analyze", victim], join(dir, "hard.onnx"), "model", victim],
      [["analyze", victim], join(dir, "sym.onnx"), "model", victim],
      [["analyze", victim], `${dir}/sub/../victim.onnx`, "model", victim],
      [["analyze", victim, "--input", probe], probe, "--input file", probe],
      [["analyze", victim, "--input", probe, "--labels", labels], labels, "--labels file", labels],
      [["analyze", victim, "--train-data", labels, "--val-data", probe], probe, "--val-data file", probe],
      [["gradcheck", victim, "--no-progress"], join(dir, "sym.onnx"), "model", victim],
      [["gradcheck", victim, "--no-progress", "--input", probe], probe, "--input file", probe],
    ];
    for (const [args, out, what, file] of cases) {
      const p = run(...args, "-o", out);
      assert.equal(p.status, 2, args.join(" "));
      assert.equal(p.stderr, refusal(out, what, file), args.join(" "));
    }
    // Relative paths in another spelling: ./sub/../victim.onnx from the folder.
    const rel = spawnSync(process.execPath, [CLI, "analyze", "victim.onnx", "-o", "./sub/../victim.onnx"], { cwd: dir, encoding: "utf8" });
    assert.equal(rel.stderr, refusal("./sub/../victim.onnx", "model", "victim.onnx"));
    assert.deepEqual(readFileSync(victim), before, "the model is untouched");
    assert.equal(readFileSync(probe).length, readFileSync(join(FIXTURES, "tanh_tiny_init.probe.npy")).length);
    // External data: the weights file next to the model.
    const ext = mkdtempSync(join(tmpdir(), "cli-out-ext-"));
    writeFileSync(join(ext, "w.bin"), new Uint8Array(new Float32Array(16).fill(0.5).buffer));
    writeFileSync(join(ext, "m.onnx"), modelBytes(graph([node("MatMul", ["x", "w"], ["y"])], [externalTensor("w", [4, 4], "w.bin", 0, 64)])));
    const weights = run("analyze", join(ext, "m.onnx"), "-o", join(ext, "w.bin"));
    assert.equal(weights.status, 2);
    assert.equal(weights.stderr, `onnx-doctor: usage: --out ${join(ext, "w.bin")} is an external data file of the model ${join(ext, "m.onnx")} (${join(ext, "w.bin")}); writing the output there would overwrite the weights: choose another --out file\n`);
    assert.ok(readFileSync(join(ext, "w.bin")).equals(Buffer.from(new Float32Array(16).fill(0.5).buffer)), "the weights are untouched");
    // An existing report next to the model is overwritten as before.
    writeFileSync(join(ext, "r.json"), "old");
    const ok = run("analyze", join(ext, "m.onnx"), "-f", "json", "-o", join(ext, "r.json"));
    assert.equal(ok.stderr, "");
    assert.equal(JSON.parse(readFileSync(join(ext, "r.json"), "utf8")).schemaVersion, 1);
  });

  it("a failed write to stdout is one line and exit 2; a reader that closes the pipe ends the run quietly with 141 (128 + SIGPIPE)", async () => {
    const full = spawnSync(process.execPath, [CLI, "analyze", model("tanh_tiny_init")], { encoding: "utf8", stdio: ["ignore", openSync("/dev/full", "w"), "pipe"] });
    assert.equal(full.status, 2);
    assert.equal(full.stderr, "onnx-doctor: output: cannot write to stdout (ENOSPC: no space left on device, write)\n");
    const toFile = run("analyze", model("tanh_tiny_init"), "-o", "/dev/full");
    assert.equal(toFile.status, 2);
    assert.equal(toFile.stderr, "onnx-doctor: output: cannot write --out /dev/full (ENOSPC: no space left on device, write)\n");
    // `| head -c1`: the reader goes away before the report is written.
    const child = spawn(process.execPath, [CLI, "analyze", model("tanh_tiny_init"), "-f", "html"], { stdio: ["ignore", "pipe", "pipe"] });
    child.stdout.destroy();
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const [code, signal] = await new Promise<[number | null, string | null]>((done) => child.on("close", (c, s) => done([c, s])));
    assert.deepEqual([code, signal, stderr], [141, null, ""]);
  });

  it("refuses float64 data and --fill values that overflow the float32 input, naming the input and the value", () => {
    const dir = mkdtempSync(join(tmpdir(), "cli-overflow-"));
    const big = join(dir, "big.npy");
    writeFileSync(big, npyBytes("<f8", [16, 128], Float64Array.from({ length: 16 * 128 }, (_, i) => (i === 5 ? 1e300 : Math.sin(i)))));
    const a = run("analyze", model("tanh_tiny_init"), "--input", big);
    assert.equal(a.status, 2);
    assert.equal(a.stderr, 'onnx-doctor: probe.input: big.npy: "input" holds 1e+300 (element 5), which overflows float32, the model\'s input type (largest finite ±3.4028235e+38); scale the data into float32\'s range\n');
    const fill = run("analyze", model("tanh_tiny_init"), "--fill", "input=1e39");
    assert.equal(fill.status, 2);
    assert.equal(fill.stderr, 'onnx-doctor: probe.input: --fill input=1e+39: 1e+39 overflows float32, the type of input "input" (largest finite ±3.4028235e+38)\n');
    const g = run("gradcheck", model("tanh_tiny_init"), "--no-progress", "--fill", "input=-1e39");
    assert.equal(g.status, 2);
    assert.match(g.stderr, /^onnx-doctor: probe\.input: --fill input=-1e\+39: -1e\+39 overflows float32/);
    // The largest float32 itself is fine: no refusal (findings may follow).
    assert.notEqual(run("analyze", model("tanh_tiny_init"), "--fill", "input=3.4e38", "--loss", "none").status, 2);
  });

  it("refuses an --out that is an external data file named '..something' inside the model's folder ('..' alone leaves it, '..data' does not)", () => {
    const dir = mkdtempSync(join(tmpdir(), "cli-dotdot-"));
    const modelFile = join(dir, "m.onnx");
    const data = join(dir, "..data.bin");
    writeFileSync(modelFile, "model");
    writeFileSync(data, "weights");
    assert.throws(() => refuseOverwrite(data, [["model", modelFile]], () => [data]), /--out .*\.\.data\.bin is an external data file of the model/);
    const other = join(dir, "..report.txt");
    writeFileSync(other, "old report");
    assert.doesNotThrow(() => refuseOverwrite(other, [["model", modelFile]], () => [data]));
  });

  it("refuses --fill values an integer input cannot hold (a fraction, beyond the type) instead of rounding or wrapping them", () => {
    const dir = mkdtempSync(join(tmpdir(), "cli-intfill-"));
    const path = join(dir, "ids.onnx");
    writeFileSync(path, modelBytes(graph([node("Gather", ["table", "ids"], ["y"])], [floatTensor("table", [8, 4], Array.from({ length: 32 }, (_, i) => Math.sin(i)))], [valueInfo("ids", ["N", 3], DT.INT64)], [valueInfo("y", ["N", 3, 4])])));
    const frac = run("analyze", path, "--fill", "ids=2.5", "--loss", "none");
    assert.equal(frac.status, 2);
    assert.equal(frac.stderr, 'onnx-doctor: probe.input: --fill ids=2.5: input "ids" is int64, so the value must be a whole number\n');
    const huge = run("analyze", path, "--fill", "ids=1e39", "--loss", "none");
    assert.equal(huge.status, 2);
    assert.match(huge.stderr, /^onnx-doctor: probe\.input: --fill ids=1e\+39: 1e\+39 is outside int64, the type of input "ids" \(-9007199254740991 to 9007199254740991\)\n$/);
    assert.equal(run("analyze", path, "--fill", "ids=3", "--loss", "none").status, 0);
  });

  it("accepts the same file given twice under two spellings (a.npy, ./a.npy)", () => {
    const p = run("analyze", model("tanh_tiny_init"), "--input", join(FIXTURES, "tanh_tiny_init.probe.npy"), "--input", join(FIXTURES, ".", "tanh_tiny_init.probe.npy").replace("/tanh_tiny_init.probe.npy", "/./tanh_tiny_init.probe.npy"), "--loss", "none", "-f", "json");
    assert.equal(p.stderr, "");
    assert.equal(JSON.parse(p.stdout).probe.inputs[0].source, "file");
  });

  it("--dim and --fill split name=value at the last '=', so names containing '=' can be given", () => {
    assert.deepEqual(keyValue("a=b=3"), { "a=b": 3 });
    assert.deepEqual(keyValue("x==-1.5"), { "x=": -1.5 });
    assert.deepEqual(dimValue("seq=len=7", { batch: 2 }), { batch: 2, "seq=len": 7 });
    assert.throws(() => keyValue("a=b"), /expected name=number, got "a=b"/);
    assert.throws(() => keyValue("=3"), /expected name=number, got "=3"/);
    const dir = mkdtempSync(join(tmpdir(), "cli-eq-"));
    const path = join(dir, "eq.onnx");
    writeFileSync(path, modelBytes(graph([node("Relu", ["a=b"], ["y"])], [], [valueInfo("a=b", ["n=1", 4])], [valueInfo("y", ["n=1", 4])])));
    const p = run("analyze", path, "--dim", "n=1=3", "--fill", "a=b=2", "-f", "json", "--loss", "none");
    assert.equal(p.stderr, "");
    const r = JSON.parse(p.stdout);
    assert.deepEqual(r.probe.inputs.map((i: { name: string; shape: number[]; source: string }) => [i.name, i.shape, i.source]), [["a=b", [3, 4], "fill"]]);
  });

  it("refuses option combinations that would silently ignore one: --static with --input or another probe option, --fill for an input --input gives, a repeated --input", () => {
    const probe = join(FIXTURES, "tanh_tiny_init.probe.npy");
    const statik = run("analyze", model("tanh_tiny_init"), "--static", "--input", probe);
    assert.equal(statik.status, 2);
    assert.equal(statik.stderr, "onnx-doctor: probe.input: --input is probe data, and --static turns the probe off: give one or the other\n");
    const others = run("analyze", model("tanh_tiny_init"), "--static", "--fill", "input=1", "--batches", "3", "--loss", "mse");
    assert.equal(others.status, 2);
    assert.equal(others.stderr, "onnx-doctor: probe.input: --fill, --batches, --loss need the probe, which --static turns off: give one or the other\n");
    for (const command of ["analyze", "gradcheck"]) {
      const quiet = command === "gradcheck" ? ["--no-progress"] : ["--loss", "none"];
      const both = run(command, model("tanh_tiny_init"), "--input", probe, "--fill", "input=1", ...quiet);
      assert.equal(both.status, 2, command);
      assert.equal(both.stderr, 'onnx-doctor: probe.input: --fill input: input "input" is also given by --input tanh_tiny_init.probe.npy; give it one way\n', command);
      const twice = run(command, model("tanh_tiny_init"), "--input", probe, "--input", join(FIXTURES, "other.npy"));
      assert.equal(twice.status, 2, command);
      assert.equal(twice.stderr, `onnx-doctor: usage: option '-i, --input <file>' argument '${join(FIXTURES, "other.npy")}' is invalid. The option was already given as ${probe}; give it once.\n`, command);
    }
    // The same file twice is harmless and runs.
    assert.notEqual(run("analyze", model("tanh_tiny_init"), "--input", probe, "--input", probe, "--loss", "none").status, 2);
  });

  it("gradcheck --precision float64 on a model whose float64 copy has no kernel says so and points to float32", () => {
    // onnxruntime's CPU Conv has no double kernel; the float32 model runs.
    const dir = mkdtempSync(join(tmpdir(), "cli-f64-"));
    const path = join(dir, "conv.onnx");
    const g = graph([node("Conv", ["x", "W"], ["c"], [attr("kernel_shape", [3, 3])], "conv0"), node("Relu", ["c"], ["y"])],
      [floatTensor("W", [2, 1, 3, 3], Array.from({ length: 18 }, (_, i) => Math.sin(i)))], [valueInfo("x", ["N", 1, 5, 5])], [valueInfo("y", ["N", 2, 3, 3])]);
    writeFileSync(path, modelBytes(g, 13));
    const p = run("gradcheck", path, "--precision", "float64", "--no-progress");
    assert.equal(p.status, 2);
    assert.equal(p.stderr, "onnx-doctor: model.unsupported: --precision float64: the model runs in float32, but its float64 copy does not: onnxruntime has no float64 (double) kernel for Conv (node conv0); use --precision float32, or the default auto, which falls back to float32\n");
    assert.equal(run("gradcheck", path, "--precision", "float32", "--no-progress").status, 0);
  });
});
