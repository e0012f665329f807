// Defects a tester found with hostile inputs: temp copies left behind by a stop, data files that
// are devices/FIFOs/directories, label dtypes, names colliding with the engine's prefixes, option
// overflows and deep graphs.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { RuntimeSession } from "../../src/runtime/session";
import { sweepStaleTempFiles } from "../../src/runtime/temp-files";
import { loadModel } from "../../src/onnx/load";
import { serializeWith } from "../../src/instrument/stats-graph";
import { attr, externalTensor, floatTensor, graph, modelBytes, node, valueInfo } from "./build-model";
import { generatedPrefix } from "../../src/instrument/names";
import { checkGradients } from "../../src/autodiff/gradcheck";
import { chooseLoss, GRADIENT_DEFAULT_MAX_NODES } from "../../src/probe/gradients";
import { evaluateFit } from "../../src/probe/fit";
import { zipSync } from "fflate";
import { analyze } from "../../src/index";
import { DoctorError } from "../../src/onnx/errors";
import { asInputType, parseNpy, readDataFile, readLabelsFile } from "../../src/probe/npy";
import { FIXTURES, npyBytes } from "./helpers";
import { GRADIENTS, gradientFixture } from "./gradient-fixtures";

const ROOT = join(__dirname, "..", "..");
const CLI = join(ROOT, "dist", "cli.js");
const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: 30_000 });
const tmp = (): string => mkdtempSync(join(tmpdir(), "doctor-hostile-"));

/** Runs a TypeScript snippet in a child process (so it can be killed), from the repository root. */
function child(dir: string, source: string): { path: string; args: string[] } {
  const path = join(dir, "child.ts");
  writeFileSync(path, source.replaceAll("@src", join(ROOT, "src")));
  return { path, args: ["--import", "tsx", path] };
}

/** A pid that belonged to a process that has exited. */
function deadPid(): number {
  const p = spawnSync(process.execPath, ["-e", ""]);
  return p.pid!;
}

describe("temporary model copies", () => {
  it("sweeps copies of processes that no longer exist, and only those", () => {
    const dir = tmp();
    const dead = `.onnx-doctor-${deadPid()}-abc.onnx`;
    const mine = `.onnx-doctor-${process.pid}-abc.onnx`;
    const parent = `.onnx-doctor-${process.ppid}-abc.onnx`;
    for (const n of [dead, mine, parent, "model.onnx", ".onnx-doctor-x-1.onnx"]) writeFileSync(join(dir, n), "x");
    assert.deepEqual(sweepStaleTempFiles(dir), [dead]);
    assert.deepEqual(readdirSync(dir).sort(), [".onnx-doctor-x-1.onnx", mine, parent, "model.onnx"].sort());
  });

  it("a session on an external-data model sweeps stale copies and leaves none of its own", async () => {
    const dir = tmp();
    writeFileSync(join(dir, "w.bin"), new Uint8Array(new Float32Array(16).fill(0.5).buffer));
    const g = graph([node("MatMul", ["x", "w"], ["y"])], [externalTensor("w", [4, 4], "w.bin", 0, 64)]);
    writeFileSync(join(dir, "m.onnx"), modelBytes(g));
    const stale = `.onnx-doctor-${deadPid()}-zz.onnx`;
    writeFileSync(join(dir, stale), "left by a killed run");
    const model = loadModel(join(dir, "m.onnx"));
    const session = await RuntimeSession.open(serializeWith(model, [], [], []), model.externalFiles);
    const r = await session.run({ x: { dtype: "float32", dims: [1, 4], data: new Float32Array([1, 1, 1, 1]) } }, ["y"]);
    await session.release();
    assert.deepEqual(Array.from(r.y.data as Float32Array), [2, 2, 2, 2]);
    assert.deepEqual(readdirSync(dir).sort(), ["m.onnx", "w.bin"]);
  });

  it("the watchdog removes registered copies before it kills the process", () => {
    const dir = tmp();
    const { args } = child(dir, `
      import { writeFileSync } from "node:fs";
      import { registerTempFile, removeTempFile } from "@src/runtime/temp-files";
      import { startWatchdog } from "@src/runtime/watchdog";
      const before = ${JSON.stringify(join(dir, ".onnx-doctor-1-before.onnx"))};
      registerTempFile(before); writeFileSync(before, "x");
      startWatchdog({ timeoutSeconds: 1 });
      const after = ${JSON.stringify(join(dir, ".onnx-doctor-1-after.onnx"))};
      registerTempFile(after); writeFileSync(after, "x");
      const gone = ${JSON.stringify(join(dir, "kept.onnx"))};
      registerTempFile(gone); writeFileSync(gone, "x"); removeTempFile(gone); writeFileSync(gone, "recreated, no longer ours");
      // Block the main thread the way onnxruntime does: only the watchdog thread runs.
      setTimeout(() => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20000), 50);
    `);
    const p = spawnSync(process.execPath, args, { cwd: ROOT, encoding: "utf8", timeout: 30_000 });
    assert.equal(p.signal, "SIGKILL", p.stderr);
    assert.match(p.stderr, /^onnx-doctor: timeout: analysis stopped after 1 s \(--timeout\)/);
    assert.deepEqual(readdirSync(dir).sort(), ["child.ts", "kept.onnx"]);
  });

  const signalled = (dir: string, signal: NodeJS.Signals, blockMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> => {
    const temp = join(dir, ".onnx-doctor-1-sig.onnx");
    const { args } = child(dir, `
      import { writeFileSync, writeSync } from "node:fs";
      import { exitOnSignalsRemovingTempFiles, registerTempFile, removeTempFile } from "@src/runtime/temp-files";
      exitOnSignalsRemovingTempFiles();
      registerTempFile(${JSON.stringify(temp)}); writeFileSync(${JSON.stringify(temp)}, "x");
      writeSync(1, "ready\\n");
      if (${blockMs} > 0) {
        // As onnxruntime's session creation: the signal arrives while the main thread is blocked,
        // and the copy is removed by the normal path before the handler can run.
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ${blockMs});
        removeTempFile(${JSON.stringify(temp)});
      }
      setTimeout(() => { writeSync(1, "survived\\n"); }, 5000);
    `);
    return new Promise((resolve) => {
      const c = spawn(process.execPath, args, { cwd: ROOT });
      let stdout = "";
      let stderr = "";
      c.stdout.on("data", (d: Buffer) => {
        stdout += d.toString();
        if (stdout === "ready\n") setTimeout(() => c.kill(signal), blockMs > 0 ? 200 : 0);
      });
      c.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      c.on("exit", (code) => resolve({ code, stdout, stderr }));
    });
  };

  it("SIGINT and SIGTERM remove the copy and exit 130 / 143 with one line", async () => {
    for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
      const dir = tmp();
      const r = await signalled(dir, signal, 0);
      assert.equal(r.code, code, r.stderr);
      assert.equal(r.stderr, `onnx-doctor: cancelled: stopped by ${signal}\n`);
      assert.deepEqual(readdirSync(dir), ["child.ts"]);
    }
  });

  it("a signal that arrives while the main thread is blocked still stops the process once it returns", async () => {
    const dir = tmp();
    const r = await signalled(dir, "SIGINT", 1500);
    assert.equal(r.code, 130, r.stderr);
    assert.doesNotMatch(r.stdout, /survived/);
    assert.ok(!existsSync(join(dir, ".onnx-doctor-1-sig.onnx")));
  });

  // onnxruntime-node creates a session and runs session.run synchronously inside a setImmediate;
  // the child does the same with Atomics.wait, writes `<step> <handlers installed>` as each block
  // starts, and the test sends `signal` when the line of step `at` arrives.
  const ortLike = (dir: string, body: string, at: string, signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string }> => {
    const { args } = child(dir, `
      import { readFile, writeFileSync, writeSync } from "node:fs";
      import { exitOnSignalsRemovingTempFiles, registerTempFile, removeTempFile, signalHandlersInstalled } from "@src/runtime/temp-files";
      exitOnSignalsRemovingTempFiles();
      const temp = ${JSON.stringify(join(dir, ".onnx-doctor-1-ort.onnx"))};
      const block = (step: string, ms: number): void => {
        writeSync(1, step + " " + signalHandlersInstalled() + "\\n");
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
        writeSync(1, step + " returned\\n");
      };
      const ort = (step: string, ms: number): Promise<void> => new Promise((resolve) => setImmediate(() => { block(step, ms); resolve(); }));
      void readFile;
      void (async () => {
        ${body}
        writeSync(1, "survived\\n");
      })();
    `);
    return new Promise((resolve) => {
      const c = spawn(process.execPath, args, { cwd: ROOT });
      let stdout = "";
      c.stdout.on("data", (d: Buffer) => {
        const sent = stdout.split("\n").some((l) => l.startsWith(`${at} `));
        stdout += d.toString();
        if (!sent && stdout.split("\n").some((l) => l.startsWith(`${at} `))) c.kill(signal);
      });
      c.on("exit", (code, sig) => resolve({ code, signal: sig, stdout }));
    });
  };

  it("a signal during the session.run right after the copy is removed stops the process at once (it was dropped: exit 0)", async () => {
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      const dir = tmp();
      const r = await ortLike(dir, `
        registerTempFile(temp); writeFileSync(temp, "x");
        try { await ort("create", 100); } finally { removeTempFile(temp); }
        await ort("run", 8000);
      `, "run", signal);
      // The handlers are gone before the first run starts: the default action ends it mid-run.
      assert.match(r.stdout, /^create true\ncreate returned\nrun false\n$/, `${signal}: ${r.stdout}`);
      assert.equal(r.signal, signal, `${signal}: exit ${r.code}`);
      assert.deepEqual(readdirSync(dir), ["child.ts"]);
    }
  });

  it("a signal caught while a failed copy blocks an I/O callback is not dropped when that callback removes the copy", async () => {
    const dir = tmp();
    const r = await ortLike(dir, `
      await new Promise<void>((resolve) => readFile(__filename, () => {
        registerTempFile(temp); writeFileSync(temp, "x");
        block("copy", 1500);
        removeTempFile(temp);
        resolve();
      }));
      await ort("create-in-memory", 300);
      await ort("run", 8000);
    `, "copy", "SIGINT");
    assert.equal(r.code, 130, r.stdout);
    assert.doesNotMatch(r.stdout, /run|survived/);
    assert.deepEqual(readdirSync(dir), ["child.ts"]);
  });
});

function npy(descr: string, shape: number[], data: ArrayBufferView): string {
  const path = join(tmp(), "a.npy");
  writeFileSync(path, npyBytes(descr, shape, data));
  return path;
}


describe("data files", () => {
  const probe = join(FIXTURES, "tanh_tiny_init.probe.npy");
  const model = join(FIXTURES, "tanh_tiny_init.onnx");

  it("a device, FIFO or directory given as --input, --labels or --train-data is refused with one line, never read", () => {
    const dir = tmp();
    const fifo = join(dir, "fifo.npy");
    assert.equal(spawnSync("mkfifo", [fifo]).status, 0);
    const cases: [string[], RegExp][] = [
      [["analyze", model, "--input", "/dev/zero"], /--input \/dev\/zero: not a regular file/],
      [["analyze", model, "--input", probe, "--labels", "/dev/zero"], /--labels \/dev\/zero: not a regular file/],
      [["analyze", model, "--input", probe, "--labels", fifo], /--labels \S+fifo\.npy: not a regular file \(a device, FIFO or socket\)/],
      [["analyze", model, "--train-data", "/dev/zero", "--val-data", "/dev/zero"], /--train-data \/dev\/zero: not a regular file/],
      [["gradcheck", model, "--no-progress", "--input", probe, "--labels", "/dev/zero"], /--labels \/dev\/zero: not a regular file/],
      [["gradcheck", model, "--no-progress", "--input", fifo], /--input \S+fifo\.npy: not a regular file/],
      [["gradcheck", model, "--no-progress", "--input", probe, "--labels", dir], /--labels \S+: is a directory, not a \.npy\/\.npz file/],
    ];
    for (const [args, pattern] of cases) {
      const p = cli(...args);
      assert.equal(p.status, 2, `${args.join(" ")}: ${p.signal ?? ""} ${p.stderr}`);
      assert.match(p.stderr, new RegExp(`^onnx-doctor: probe\\.input: ${pattern.source}[^\\n]*\\n$`), args.join(" "));
    }
  });

  it("external data that is a FIFO or a directory is refused by name (opening a FIFO would block forever), --static too", () => {
    const dir = tmp();
    assert.equal(spawnSync("mkfifo", [join(dir, "fifo.data")]).status, 0);
    mkdirSync(join(dir, "sub"));
    for (const [location, kind] of [["fifo.data", "a FIFO"], ["sub", "a directory"]]) {
      const g = graph([node("MatMul", ["x", "W"], ["y0"]), node("Add", ["y0", "E"], ["y"])], [floatTensor("W", [4, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]), externalTensor("E", [0, 3], location, 0, 0)],
        [valueInfo("x", ["N", 4])], [valueInfo("y", ["N", 3])]);
      const path = join(dir, `${kind.split(" ")[1]}.onnx`);
      writeFileSync(path, modelBytes(g, 13));
      for (const extra of [[], ["--static"]]) {
        const p = cli("analyze", path, ...extra, "--timeout", "20");
        assert.equal(p.status, 2, `${location} ${extra}: ${p.signal ?? ""} ${p.stderr}`);
        assert.equal(p.stderr, `onnx-doctor: model.invalid: external data location "${location}" of tensor E is ${kind}, not a regular file; refused\n`);
      }
    }
  });

  it("refuses a data file over the size cap without reading it", () => {
    const path = join(tmp(), "huge.npy");
    const fd = openSync(path, "w");
    closeSync(fd);
    // Sparse: 3 GiB of holes, nothing written.
    spawnSync("truncate", ["-s", "3G", path]);
    assert.throws(() => readDataFile(path, "--input"), (e: unknown) => e instanceof DoctorError && e.code === "probe.input" && /--input \S+huge\.npy: 3\.0 GiB is more than the 2\.0 GiB a data file may have/.test(e.message));
    assert.throws(() => readDataFile(join(tmp(), "missing.npy"), "--labels"), /--labels \S+missing\.npy: cannot read it \(ENOENT/);
  });
});

describe("label dtypes", () => {
  const fx = gradientFixture("relu_he_deep");
  const ids = Array.from(parseNpy(readFileSync(join(GRADIENTS, fx.labels)), fx.labels).data as BigInt64Array, Number);
  const f16 = (v: number): number => ({ 0: 0x0000, 1: 0x3c00, 2: 0x4000, 3: 0x4200, 4: 0x4400, 5: 0x4500, 6: 0x4600, 7: 0x4700, 8: 0x4800, 9: 0x4880, 0.5: 0x3800 } as Record<number, number>)[v];

  it("class ids of every integer and float dtype give the oracle's cross-entropy", async () => {
    assert.equal(ids.length, 16);
    const files = {
      uint64: npy("<u8", [16], BigUint64Array.from(ids.map(BigInt))),
      int32: npy("<i4", [16], Int32Array.from(ids)),
      uint8: npy("|u1", [16], Uint8Array.from(ids)),
      float16: npy("<f2", [16], Uint16Array.from(ids.map(f16))),
      float64: npy("<f8", [16], Float64Array.from(ids)),
    };
    for (const [dtype, labelsFile] of Object.entries(files)) {
      assert.deepEqual(Array.from(readLabelsFile(labelsFile, "ce").data as Float64Array), ids, dtype);
      const rep = await analyze(join(GRADIENTS, fx.model), { inputFile: join(GRADIENTS, fx.input), batchSize: 16, batches: 1, labelsFile });
      assert.ok(Math.abs(rep.probe.loss!.value! - fx.losses.ce.value) < 1e-4 * fx.losses.ce.value, `${dtype}: ${rep.probe.loss!.value} vs ${fx.losses.ce.value}`);
    }
  });

  it("float16 regression targets are decoded, not read as their bits", async () => {
    const targets = Array.from({ length: 16 * 10 }, (_, i) => [0, 0.5, 1][i % 3]);
    const half = npy("<f2", [16, 10], Uint16Array.from(targets.map(f16)));
    const single = npy("<f4", [16, 10], Float32Array.from(targets));
    const options = { inputFile: join(GRADIENTS, fx.input), batchSize: 16, batches: 1, loss: "mse" as const };
    const a = await analyze(join(GRADIENTS, fx.model), { ...options, labelsFile: half });
    const b = await analyze(join(GRADIENTS, fx.model), { ...options, labelsFile: single });
    assert.ok(a.probe.loss!.value! < 10, `loss ${a.probe.loss!.value}`);
    assert.equal(a.probe.loss!.value, b.probe.loss!.value);
  });

  it("--train-data/--val-data labels: float16 decoded, NaN refused", async () => {
    // y = x . [1, 2, 3, 4] = ±2: a regression the labels fit exactly, so both errors are 0 when decoded right.
    const g = graph([node("MatMul", ["x", "W"], ["y"], [], "/fc/MatMul")], [floatTensor("W", [4, 1], [1, 2, 3, 4])], undefined, [valueInfo("y", ["batch", 1])]);
    const modelPath = join(tmp(), "reg.onnx");
    writeFileSync(modelPath, modelBytes(g));
    const x = Float32Array.from({ length: 8 * 4 }, (_, i) => [1, 0.5, 0, 0][i % 4] * ((i >> 2) % 2 ? 1 : -1));
    const y = Array.from({ length: 8 }, (_, r) => (r % 2 ? 2 : -2));
    const set = (labels: Uint8Array): string => {
      const path = join(tmp(), "set.npz");
      writeFileSync(path, zipSync({ "x.npy": npyBytes("<f4", [8, 4], x), "labels.npy": labels }));
      return path;
    };
    const half = set(npyBytes("<f2", [8], Uint16Array.from(y, (v) => (v > 0 ? 0x4000 : 0xc000))));
    const fit = await evaluateFit(loadModel(modelPath), { trainData: half, valData: half });
    assert.deepEqual([fit.task, fit.train.loss, fit.val.error], ["regression", 0, 0]);
    const nan = set(npyBytes("<f4", [8], Float32Array.from(y, (v, i) => (i === 3 ? NaN : v))));
    await assert.rejects(evaluateFit(loadModel(modelPath), { trainData: nan, valData: half }), /set\.npz: "labels": label NaN in row 3; labels and targets must be finite numbers/);
  });

  it("--train-data/--val-data labels are refused like --labels: class ids outside the output's classes, float labels against class ids, wrong counts", async () => {
    // logits = x (8 classes): the labels argmax(x) fit exactly.
    const g = graph([node("Gemm", ["x", "W", "b"], ["y"])], [floatTensor("W", [8, 8], Array.from({ length: 64 }, (_, i) => (i % 9 ? 0 : 1))), floatTensor("b", [8], new Array(8).fill(0))],
      [valueInfo("x", ["N", 8])], [valueInfo("y", ["N", 8])]);
    const dir = tmp();
    const modelPath = join(dir, "logits.onnx");
    writeFileSync(modelPath, modelBytes(g, 13));
    const x = Float32Array.from({ length: 16 * 8 }, (_, i) => (i % 8 === (i >> 3) % 8 ? 1 : 0));
    const ids = Array.from({ length: 16 }, (_, r) => r % 8);
    const set = (name: string, labels: Uint8Array): string => {
      const path = join(dir, name);
      writeFileSync(path, zipSync({ "x.npy": npyBytes("<f4", [16, 8], x), "labels.npy": labels }));
      return path;
    };
    const train = set("train.npz", npyBytes("<i8", [16], BigInt64Array.from(ids, BigInt)));
    const good = await evaluateFit(loadModel(modelPath), { trainData: train, valData: train });
    assert.deepEqual([good.task, good.train.error, good.val.error, good.verdict], ["classification", 0, 0, "just-right"]);
    const cases: [string, string, Uint8Array, string][] = [
      ["val", "v99.npz", npyBytes("<i8", [16], BigInt64Array.from(ids, (v, i) => BigInt(i === 2 ? 99 : v))),
        '--val-data v99.npz: "labels" holds 99 in row 2, which is not a class index in [0, 8): the model\'s first output "y" has 8 classes'],
      ["val", "vfloat.npz", npyBytes("<f8", [16], Float64Array.from(ids, (v, i) => (i === 4 ? 0.25 : v))),
        '--val-data vfloat.npz: "labels" holds 0.25 in row 4, which is not a class index in [0, 8): the model\'s first output "y" has 8 classes; the labels of --train-data train.npz are class ids, so these must be too'],
      ["train", "tneg.npz", npyBytes("<i4", [16], Int32Array.from(ids, (v, i) => (i === 0 ? -1 : v))),
        '--train-data tneg.npz: "labels" holds -1 in row 0, which is not a class index in [0, 8): the model\'s first output "y" has 8 classes'],
      ["val", "v2d.npz", npyBytes("<i8", [16, 2], BigInt64Array.from([...ids, ...ids], BigInt)),
        '--val-data v2d.npz: "labels" has shape [16,2]: class labels are one integer per row, 16 here'],
      ["train", "treg.npz", npyBytes("<f4", [16], Float32Array.from(ids, (v) => v + 0.5)),
        '--train-data treg.npz: "labels" holds 16 targets, but the model\'s first output "y" gives 128 values for the 16 rows (8 per row); regression targets pair with output values one to one'],
    ];
    for (const [which, name, labels, message] of cases) {
      const bad = set(name, labels);
      const options = which === "val" ? { trainData: train, valData: bad } : { trainData: bad, valData: train };
      await assert.rejects(evaluateFit(loadModel(modelPath), options), (e: unknown) => e instanceof DoctorError && e.code === "probe.input" && e.message === message, name);
    }
    // On the command line: exit 2, one line, no report and no fit.high-bias.
    const p = cli("analyze", modelPath, "--train-data", train, "--val-data", join(dir, "v99.npz"));
    assert.equal(p.status, 2);
    assert.equal(p.stdout, "");
    assert.equal(p.stderr, `onnx-doctor: probe.input: ${cases[0][3]}\n`);
  });

  it("float64 probe data beyond float32's range is refused by input and value, not reported as NaN/Inf in the data", () => {
    const t = { dtype: "float64" as const, dims: [2, 2], data: Float64Array.from([1, -2, -1e39, 3]) };
    assert.throws(() => asInputType(t, "float32", "x.npy", "x"), (e: unknown) => e instanceof DoctorError && e.code === "probe.input"
      && e.message === 'x.npy: "x" holds -1e+39 (element 2), which overflows float32, the model\'s input type (largest finite ±3.4028235e+38); scale the data into float32\'s range');
    // The largest float32 and values that round to it are kept; Inf already in the data is the data's own, left to the NaN/Inf check.
    assert.deepEqual(Array.from(asInputType({ ...t, data: Float64Array.from([3.4028234663852886e38, 3.40282350e38, Infinity, 0]) }, "float32", "x.npy", "x").data as Float32Array), [3.4028234663852886e38, 3.4028234663852886e38, Infinity, 0]);
  });

  it("refuses bool class ids, integer regression targets and NaN/Inf with one clear line", () => {
    const refused = (file: string, loss: "ce" | "mse", pattern: RegExp): void => {
      assert.throws(() => readLabelsFile(file, loss), (e: unknown) => e instanceof DoctorError && e.code === "probe.input" && pattern.test(e.message) && !e.message.includes("\n"), String(pattern));
    };
    refused(npy("|b1", [4], Uint8Array.from([0, 1, 1, 0])), "ce", /class labels must be integer class ids, got bool \(for two classes save them as integers/);
    refused(npy("<i8", [4], BigInt64Array.from([1n, 2n, 3n, 4n])), "mse", /regression targets must be floats, got int64/);
    refused(npy("<f4", [2, 2], Float32Array.from([1, 2, NaN, 4])), "mse", /target NaN in row 1; labels and targets must be finite numbers/);
    refused(npy("<f2", [3], Uint16Array.from([0x3c00, 0x7c00, 0])), "ce", /label Infinity in row 1/);
    assert.throws(() => readLabelsFile(npy("<i8", [1], BigInt64Array.from([1n])), "random"), /--labels needs --loss ce or --loss mse/);
  });
});

describe("names colliding with the engine's generated prefixes", () => {
  const bases = ["__doctor", "__doctor_channels", "__doctor_nan", "__doctor_shape", "__doctor_grad"] as const;
  const hints = ["Slice", "Reshape", "ReduceMean", "ReduceSumSquare", "ReduceMax", "ReduceMin", "ReduceSum", "const", "Mul", "Sub", "Add", "Cast",
    "Shape", "Abs", "Max", "Neg", "Sum", "Exp", "LogSoftmax", "Transpose", "target_cotangent", "target_onehot", "Greater", "Less", "Where", "Div", "Size", "Sign", "Flatten"];

  /** x -> MatMul -> BatchNorm (running mean far off) -> Relu -> MatMul -> y, plus a tensor under every generated name. */
  function flooded(nanWeight: boolean): string {
    const w1 = Array.from({ length: 16 }, (_, i) => ((i * 7) % 5) / 5 - 0.4);
    const w2 = Array.from({ length: 12 }, (_, i) => ((i * 3) % 7) / 7 - 0.4);
    if (nanWeight) w2[5] = NaN;
    const g = graph([
      node("MatMul", ["x", "W1"], ["h"], [], "/fc1/MatMul"),
      node("BatchNormalization", ["h", "gamma", "beta", "mu", "var"], ["n"], [], "/bn/BatchNormalization"),
      node("Relu", ["n"], ["a"], [], "/act/Relu"),
      node("MatMul", ["a", "W2"], ["y"], [], "/fc2/MatMul"),
      // One colliding name as a node output too, the way an exporter would produce it.
      node("Identity", ["x"], ["__doctor_grad/Mul_45"], [], "__doctor_shape/Shape_0"),
    ], [
      floatTensor("W1", [4, 4], w1), floatTensor("W2", [4, 3], w2),
      floatTensor("gamma", [4], [1, 1, 1, 1]), floatTensor("beta", [4], [0, 0, 0, 0]), floatTensor("mu", [4], [-3, -3, -3, -3]), floatTensor("var", [4], [1, 1, 1, 1]),
      ...bases.flatMap((b) => hints.flatMap((h) => Array.from({ length: 40 }, (_, i) => floatTensor(`${b}/${h}_${i}`, [], [0])))),
    ], undefined, [valueInfo("y", ["batch", 3])]);
    const path = join(tmp(), "flooded.onnx");
    writeFileSync(path, modelBytes(g));
    return path;
  }

  it("chooses, per model, a prefix no node or tensor name starts with (subgraphs included)", () => {
    const branch = graph([node("Identity", ["x"], ["__doctor_grad1/inner"])], [], [], [valueInfo("__doctor_grad1/inner", [4])]);
    const g = graph([node("If", ["c"], ["y"], [attr("then_branch", branch), attr("else_branch", branch)], "__doctor_nan")], []);
    const model = loadModel("mem.onnx", { bytes: modelBytes(g) });
    assert.equal(generatedPrefix(model, "__doctor_shape"), "__doctor_shape", "no collision: the base itself");
    assert.equal(generatedPrefix(model, "__doctor_nan"), "__doctor_nan1", "a node name");
    // "__doctor_grad1/inner" lives only in the branch; __doctor_grad is taken by it too.
    assert.equal(generatedPrefix(model, "__doctor_grad"), "__doctor_grad2");
    assert.equal(generatedPrefix(model, "__doctor"), "__doctor1", "any name starting with the base counts");
  });

  it("the probe, its gradients, the BatchNorm statistics and the NaN locator run on a model that uses every generated name", async () => {
    const rep = await analyze(flooded(false), { batchSize: 4, batches: 1 });
    assert.equal(rep.probe.ran, true, rep.probe.error);
    assert.equal(rep.probe.gradientCoverage?.error, undefined);
    assert.equal(rep.probe.gradientCoverage?.supported, rep.probe.gradientCoverage?.layers);
    assert.ok(rep.layers.every((l) => !l.weight || (l.weight.gradient?.l2 ?? 0) > 0), "every weight gets a gradient");
    assert.ok(rep.findings.some((f) => f.category === "norm.bn-variance"), "the per-channel statistics ran");
    const nan = await analyze(flooded(true), { batchSize: 4, batches: 1 });
    const nf = nan.findings.find((f) => f.category === "numeric.nonfinite");
    assert.equal(nf?.node, "/fc2/MatMul");
  });

  it("gradient checking runs on it too", async () => {
    const r = await checkGradients(flooded(false), { samples: 2 });
    assert.ok(r.checks.length >= 2);
    assert.deepEqual(r.checks.filter((c) => c.grade === "wrong").map((c) => c.tensor), []);
  });
});

describe("option validation", () => {
  const model = join(FIXTURES, "tanh_tiny_init.onnx");
  const max = Math.max(64, 4 * availableParallelism());

  it("caps --threads in analyze and gradcheck; gradcheck validates --seed, --epsilon and --labels like analyze", () => {
    const refused: [string[], RegExp][] = [
      [["analyze", model, "--threads", String(max + 1)], new RegExp(`--threads <n>' argument '${max + 1}' is invalid\\. must be at most ${max} `)],
      [["gradcheck", model, "--threads", "100000"], new RegExp(`--threads <n>' argument '100000' is invalid\\. must be at most ${max} `)],
      [["gradcheck", model, "--seed", "-1"], /--seed <n>' argument '-1' is invalid\. must be a non-negative integer/],
      [["gradcheck", model, "--seed", "1e30"], /must be a non-negative integer/],
      [["gradcheck", model, "--seed", "abc"], /must be a non-negative integer/],
      [["gradcheck", model, "--epsilon", "Infinity"], /--epsilon <e>' argument 'Infinity' is invalid\. must be a finite positive number/],
      [["gradcheck", model, "--epsilon", "NaN"], /must be a finite positive number/],
      [["gradcheck", model, "--loss", "none"], /argument 'none' is invalid\. Allowed choices are ce, mse, random/],
      [["gradcheck", model, "--loss", "random", "--labels", join(FIXTURES, "tanh_tiny_init.probe.npy")], /^onnx-doctor: probe\.input: --labels is used only by --loss ce or mse; --loss random would ignore it\n$/],
      [["analyze", model, "--batches", "1e9"], /--batches <n>' argument '1e9' is invalid\. must be at most 100,000/],
      [["gradcheck", model, "--epsilon", "1e-320"], /--epsilon <e>' argument '1e-320' is invalid\. must be at least 1e-12/],
      [["analyze", model, "-o", "/nonexistent-folder/r.json"], /^onnx-doctor: usage: option '-o, --out <file>' argument '\/nonexistent-folder\/r\.json' is invalid\. the folder \/nonexistent-folder does not exist\n$/],
      [["gradcheck", model, "-o", "/nonexistent-folder/r.json"], /the folder \/nonexistent-folder does not exist/],
      [["gradcheck", model, "-o", tmpdir()], /argument '[^']+' is invalid\. is a folder; give a file name/],
      [["analyze", model, "-o", ""], /argument '' is invalid\. is empty/],
      [["analyze", model, "--batches", "0x10"], /--batches <n>' argument '0x10' is invalid\. must be a positive integer/],
    ];
    for (const [args, pattern] of refused) {
      const p = cli(...args);
      assert.equal(p.status, 2, `${args.join(" ")}: ${p.stderr}`);
      assert.match(p.stderr, pattern, args.join(" "));
    }
    const ok = cli("analyze", model, "--static", "--threads", String(max));
    assert.equal(ok.status, 0, ok.stderr);
  });
});

describe("a second round of hostile inputs", () => {
  it("probe data with no rows is refused before anything runs", async () => {
    const dir = tmp();
    const empty = join(dir, "x_empty.npy");
    writeFileSync(empty, npyBytes("<f4", [0, 128], new Float32Array(0)));
    const model = join(FIXTURES, "tanh_tiny_init.onnx");
    for (const command of ["analyze", "gradcheck"]) {
      const p = cli(command, model, "--input", empty, ...(command === "gradcheck" ? ["--no-progress"] : []));
      assert.equal(p.status, 2, `${command}: ${p.stderr}`);
      assert.match(p.stderr, /^onnx-doctor: probe\.input: x_empty\.npy: "input" has shape \[0,128\]: no values to probe with\n$/, command);
    }
  });

  it("token ids outside the embedding table are refused as bad probe data, by name and value, not blamed on the model", () => {
    const ids = join(tmp(), "ids.npy");
    writeFileSync(ids, npyBytes("<i8", [2, 8], BigInt64Array.from({ length: 16 }, (_, i) => BigInt(i === 11 ? 50 : i))));
    const p = cli("analyze", join(GRADIENTS, "transformer_postnorm.onnx"), "--input", ids);
    assert.equal(p.status, 2, p.stderr);
    assert.equal(p.stderr, 'onnx-doctor: probe.input: ids.npy: "input" holds id 50 (element 11), outside the embedding table it indexes (50 rows, ids 0..49)\n');
  });

  it("two outputs that alias one scalar do not cancel the random loss", async () => {
    const g = graph([node("ReduceSum", ["h"], ["y"], [attr("keepdims", 0)]), node("Identity", ["y"], ["y_copy"]), node("MatMul", ["x", "W"], ["h"])],
      [floatTensor("W", [4, 3], [0.5, -1, 0.25, 1, 0.5, -0.5, -0.25, 1, 0.75, 0.1, 0.2, 0.3])], [valueInfo("x", ["batch", 4])], [valueInfo("y", []), valueInfo("y_copy", [])]);
    const path = join(tmp(), "alias.onnx");
    writeFileSync(path, modelBytes(g, 17));
    for (const seed of [0, 1, 2, 3]) {
      const r = await analyze(path, { seed, batches: 1 });
      assert.ok(r.layers[0].weight?.gradient && r.layers[0].weight.gradient.l2 > 0, `seed ${seed}: ${JSON.stringify(r.layers[0].weight?.gradient)}`);
      assert.ok(!r.findings.some((f) => f.category === "gradient.vanishing"), `seed ${seed}`);
    }
  });

  it("gradcheck checks every label row, not only the batch it runs, and says which rows it used", async () => {
    const fx = gradientFixture("relu_he_deep");
    const labels = join(tmp(), "labels.npy");
    const ids = Array.from({ length: 16 }, (_, i) => (i === 9 ? 10 : i % 10));
    writeFileSync(labels, npyBytes("<i8", [16], BigInt64Array.from(ids.map(BigInt))));
    await assert.rejects(checkGradients(join(GRADIENTS, fx.model), { inputFile: join(GRADIENTS, fx.input), labelsFile: labels, samples: 1 }), /labels: 10 is not a class index in \[0, 10\)/);
    const res = await checkGradients(join(GRADIENTS, fx.model), { inputFile: join(GRADIENTS, fx.input), samples: 1 });
    assert.ok(res.warnings.some((w) => /^Checked on the first 2 of the 16 rows of relu_he_deep\.probe\.npy/.test(w)), res.warnings.join("\n"));
  });

  it("a model without inputs is refused with the reason, and a model without weight layers builds no backward graph", async () => {
    const constant = graph([node("Constant", [], ["y"], [attr("value", floatTensor("v", [2], [1, 2]))])], [], [], [valueInfo("y", [2])]);
    const path = join(tmp(), "constant.onnx");
    writeFileSync(path, modelBytes(constant, 17));
    const p = cli("analyze", path);
    assert.equal(p.status, 2);
    assert.equal(p.stderr, "onnx-doctor: probe.input: the model has no inputs, so it computes a constant: there is nothing to probe (use --static for its weights)\n");
    const relu = graph([node("Relu", ["x"], ["y"])], []);
    const reluPath = join(tmp(), "relu.onnx");
    writeFileSync(reluPath, modelBytes(relu, 17));
    const r = await analyze(reluPath, { batches: 1 });
    assert.deepEqual(r.findings.filter((f) => f.category === "model.unsupported"), []);
  });

  it("an input dimension fixed at 0 is refused by name (onnxruntime holds it to 0), and --static still checks the weights", async () => {
    const g = graph([node("MatMul", ["x", "W"], ["y"])], [floatTensor("W", [4, 3], Array.from({ length: 12 }, (_, i) => i / 10))], [valueInfo("x", [0, 4])], [valueInfo("y", [0, 3])]);
    const path = join(tmp(), "empty-batch.onnx");
    writeFileSync(path, modelBytes(g, 13));
    const p = cli("analyze", path);
    assert.equal(p.status, 2);
    assert.match(p.stderr, /^onnx-doctor: probe\.input: input "x" has shape \[0, 4\]: dimension 0 is fixed at 0, so every tensor it accepts is empty/);
    const s = cli("analyze", path, "--static");
    assert.equal(s.status, 0, s.stderr);
    await assert.rejects(checkGradients(path, {}), /dimension 0 is fixed at 0/);
  });

  it("gradcheck refuses opsets below the gradient rules' minimum with the reason, not onnxruntime's", async () => {
    const g = graph([node("Mul", ["x", "W"], ["y"])], [floatTensor("W", [4], [1, 2, 3, 4])]);
    const path = join(tmp(), "opset6.onnx");
    writeFileSync(path, modelBytes(g, 6, 3));
    await assert.rejects(checkGradients(path, { samples: 1 }), /^DoctorError: gradients need opset 8 or later \(the model uses 6\)/);
  });
});

describe("deep graphs", () => {
  /** x -> MatMul -> (n - 2) x Add -> MatMul -> y: n nodes. */
  function chain(n: number): string {
    const nodes = [node("MatMul", ["x", "W0"], ["t0"], [], "/first/MatMul")];
    for (let i = 1; i < n - 1; i++) nodes.push(node("Add", [`t${i - 1}`, "c"], [`t${i}`], [], `/add${i}/Add`));
    nodes.push(node("MatMul", [`t${n - 2}`, "W1"], ["y"], [], "/last/MatMul"));
    const eye = Array.from({ length: 16 }, (_, i) => (i % 5 === 0 ? 1 : 0.01));
    const path = join(tmp(), `chain${n}.onnx`);
    writeFileSync(path, modelBytes(graph(nodes, [floatTensor("W0", [4, 4], eye), floatTensor("W1", [4, 4], eye), floatTensor("c", [], [0.001])])));
    return path;
  }

  it("gradients are off by default above 3,000 nodes, with the way to turn them on", async () => {
    assert.equal(GRADIENT_DEFAULT_MAX_NODES, 3000);
    assert.equal(chooseLoss(loadModel(chain(3000)), undefined, undefined).loss, "random");
    const deep = loadModel(chain(3001));
    assert.deepEqual(chooseLoss(deep, "random", undefined), { loss: "random" }, "asked for: on");
    const rep = await analyze(chain(3001), { batchSize: 2, batches: 1 });
    assert.equal(rep.probe.ran, true, rep.probe.error);
    assert.match(rep.probe.gradientCoverage?.error ?? "", /^skipped by default: the model has 3001 nodes \(more than 3000\).*ask for them with --loss random\|ce\|mse$/);
    const info = rep.findings.find((f) => f.ruleId === "model.unsupported/gradient-skipped");
    assert.equal(info?.severity, "info");
    assert.match(info!.fix, /--loss random/);
    assert.ok(rep.layers.every((l) => l.gradient === undefined));
  });
});
