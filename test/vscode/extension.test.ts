// Integration tests in a real VS Code extension host (run by scripts/vscode-e2e.sh). The workspace
// is a scratch folder with copies of the fixtures in models/.
import * as assert from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import * as vscode from "vscode";
import type { ModelDoctorApi } from "../../extension/extension";
import type { EngineError } from "../../extension/engine";

const EXT_ID = "onnx-model-doctor.onnx-model-doctor";
let api: ModelDoctorApi;
const ws = (): string => vscode.workspace.workspaceFolders![0].uri.fsPath;
const fixtures = (): string => path.join(vscode.extensions.getExtension(EXT_ID)!.extensionPath, "test", "fixtures", "models");
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, fn: () => T | undefined | false, timeoutMs: number): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

suite("ONNX Model Doctor extension", () => {
  suiteSetup(async () => {
    const ext = vscode.extensions.getExtension<ModelDoctorApi>(EXT_ID);
    assert.ok(ext, "extension is installed");
    api = await ext.activate();
  });

  test("commands are registered under Model Doctor", async () => {
    const cmds = await vscode.commands.getCommands(true);
    for (const c of ["analyze", "analyzeWithData", "checkGradients", "exportReport", "clearDiagnostics", "showLog", "openReport", "revealFinding"]) {
      assert.ok(cmds.includes(`modelDoctor.${c}`), `modelDoctor.${c} registered`);
    }
    await vscode.commands.executeCommand("modelDoctor.showLog");
  });

  test("analysing tanh_tiny_init publishes diagnostics incl. activation.vanishing", async () => {
    const uri = vscode.Uri.file(path.join(ws(), "models", "tanh_tiny_init.onnx"));
    const report = await vscode.commands.executeCommand<{ findings: { category: string }[] } | undefined>("modelDoctor.analyze", uri);
    assert.ok(report, "the command returns the report");
    const diags = vscode.languages.getDiagnostics(uri);
    const vanishing = diags.filter((d) => d.code === "activation.vanishing");
    assert.strictEqual(vanishing.length, 1, `diagnostics: ${diags.map((d) => String(d.code)).join(", ")}`);
    assert.strictEqual(vanishing[0].severity, vscode.DiagnosticSeverity.Warning);
    assert.strictEqual(vanishing[0].source, "Model Doctor");
    assert.ok(diags.filter((d) => d.code === "init.scale-small").length >= 9);
    assert.ok(/Fix:/.test(vanishing[0].message));
    // the command opened the report editor
    await waitFor("report panel", () => api.editor.openPanels(uri) > 0, 10000);
  });

  test("findings tree: model -> severity -> findings", async () => {
    const models = api.treeChildren();
    const tiny = models.find((m) => m.kind === "model" && m.stored.uri.fsPath.endsWith("tanh_tiny_init.onnx"));
    assert.ok(tiny, `tree roots: ${models.length}`);
    const groups = api.treeChildren(tiny);
    assert.deepStrictEqual(groups.map((g) => g.kind === "severity" && g.severity), ["warning"]);
    const items = api.treeChildren(groups[0]);
    assert.strictEqual(items.length, 11);
    const item = api.tree.getTreeItem(items[items.length - 1]);
    assert.match(String(item.description), /activation\.vanishing/);
    assert.strictEqual(item.command?.command, "modelDoctor.revealFinding");
    await vscode.commands.executeCommand(item.command.command, ...(item.command.arguments ?? []));
  });

  test("lint on save: a faulty model gets diagnostics within 5 s, a healthy replacement clears them, delete clears", async () => {
    const dir = path.join(ws(), "saved");
    fs.mkdirSync(dir, { recursive: true });
    const uri = vscode.Uri.file(path.join(dir, "model.onnx"));
    const t0 = Date.now();
    await vscode.workspace.fs.writeFile(uri, fs.readFileSync(path.join(fixtures(), "dead_relu.onnx")));
    await waitFor("diagnostics on the saved model", () => vscode.languages.getDiagnostics(uri).some((d) => d.code === "activation.dead"), 5000);
    const ms = Date.now() - t0;
    console.log(`LATENCY save -> diagnostics: ${ms} ms`);
    assert.ok(ms < 5000);
    assert.ok(vscode.languages.getDiagnostics(uri).every((d) => d.severity === vscode.DiagnosticSeverity.Error));

    const t1 = Date.now();
    await vscode.workspace.fs.writeFile(uri, fs.readFileSync(path.join(fixtures(), "relu_he_deep.onnx")));
    await waitFor("diagnostics cleared after a healthy model replaced it", () => vscode.languages.getDiagnostics(uri).length === 0 && api.store.get(uri)?.report.layers.length === 10, 5000);
    console.log(`LATENCY healthy save -> diagnostics cleared: ${Date.now() - t1} ms`);

    await vscode.workspace.fs.writeFile(uri, fs.readFileSync(path.join(fixtures(), "zero_mlp.onnx")));
    await waitFor("diagnostics again", () => vscode.languages.getDiagnostics(uri).length > 0, 5000);
    await vscode.workspace.fs.delete(uri);
    await waitFor("diagnostics cleared on delete", () => vscode.languages.getDiagnostics(uri).length === 0 && !api.store.get(uri), 5000);
  });

  test("a rapid second save cancels the first run (debounced, one report)", async () => {
    const uri = vscode.Uri.file(path.join(ws(), "saved", "twice.onnx"));
    await vscode.workspace.fs.writeFile(uri, fs.readFileSync(path.join(fixtures(), "dead_relu.onnx")));
    await sleep(50);
    await vscode.workspace.fs.writeFile(uri, fs.readFileSync(path.join(fixtures(), "tanh_tiny_init.onnx")));
    await waitFor("report of the second version", () => api.store.get(uri)?.report.findings.some((f) => f.category === "activation.vanishing"), 8000);
    assert.ok(!vscode.languages.getDiagnostics(uri).some((d) => d.code === "activation.dead"));
    await vscode.workspace.fs.delete(uri);
  });

  test("custom editor opens the report for a model", async () => {
    const uri = vscode.Uri.file(path.join(ws(), "models", "relu_he_deep.onnx"));
    await vscode.commands.executeCommand("vscode.openWith", uri, "modelDoctor.report");
    await waitFor("panel", () => api.editor.openPanels(uri) > 0, 10000);
    await waitFor("report from the editor's own analysis", () => api.store.get(uri), 15000);
    assert.strictEqual(api.store.get(uri)!.report.findings.length, 0);
  });

  test("export writes SARIF 2.1.0, HTML, JSON and Markdown", async () => {
    const uri = vscode.Uri.file(path.join(ws(), "models", "tanh_tiny_init.onnx"));
    const out = path.join(ws(), "exports");
    fs.mkdirSync(out, { recursive: true });
    for (const [format, ext] of [["sarif", "sarif"], ["html", "html"], ["json", "json"], ["markdown", "md"]] as const) {
      const target = vscode.Uri.file(path.join(out, `tiny.${ext}`));
      await vscode.commands.executeCommand("modelDoctor.exportReport", uri, format, target);
      assert.ok(fs.existsSync(target.fsPath), `${format} written`);
    }
    const sarif = JSON.parse(fs.readFileSync(path.join(out, "tiny.sarif"), "utf8"));
    assert.strictEqual(sarif.version, "2.1.0");
    assert.ok(sarif.runs[0].results.some((r: { ruleId: string }) => r.ruleId === "activation.vanishing"));
    const html = fs.readFileSync(path.join(out, "tiny.html"), "utf8");
    assert.ok(html.includes('id="md-report"') && html.includes("Content-Security-Policy"));
    assert.ok(!/<script[^>]+src=/.test(html), "no external scripts");
  });

  test("worker: kill -9 gives a clear error and the next run works; timeout and cancel", async () => {
    const model = path.join(fixtures(), "tanh_tiny_init.onnx");
    const run = api.engine.run(model, {}, { timeoutMs: 30000 });
    await sleep(100);
    process.kill(run.pid!, "SIGKILL");
    await assert.rejects(run.promise, (e: EngineError) => e.code === "worker.crashed" && /stopped unexpectedly/.test(e.message));
    const again = await api.engine.run(model, {}, { timeoutMs: 30000 }).promise;
    assert.strictEqual(again.layers.length, 10);
    await assert.rejects(api.engine.run(model, {}, { timeoutMs: 1 }).promise, (e: EngineError) => e.code === "timeout");
    const c = api.engine.run(model, {}, { timeoutMs: 30000 });
    c.cancel();
    await assert.rejects(c.promise, (e: EngineError) => e.code === "cancelled");
  });

  test("the extension host's event loop stays responsive during an analysis (< 50 ms stalls)", async () => {
    const big = path.resolve(fixtures(), "../../../../shared/models/real/light_resnet50.onnx");
    const model = fs.existsSync(big) ? big : path.join(fixtures(), "resnet_bn.onnx");
    /** Runs `work` while a 5 ms ticker records how late it fires; returns stalls over 20 ms. */
    const watch = async (work: () => Promise<unknown>): Promise<{ worst: number; stalls: string[]; ms: number }> => {
      const t0 = performance.now();
      let last = t0;
      let worst = 0;
      const stalls: string[] = [];
      const tick = setInterval(() => {
        const now = performance.now();
        const extra = now - last - 5;
        if (extra > 20) stalls.push(`${extra.toFixed(0)}ms@${(now - t0).toFixed(0)}`);
        worst = Math.max(worst, extra);
        last = now;
      }, 5);
      try {
        await work();
      } finally {
        clearInterval(tick);
      }
      return { worst, stalls, ms: performance.now() - t0 };
    };
    const idle = await watch(() => sleep(2000));
    const run = await watch(() => api.engine.run(model, {}, { timeoutMs: 120000 }).promise);
    console.log(`EVENTLOOP idle 2 s: worst extra delay ${idle.worst.toFixed(1)} ms [${idle.stalls.join(" ")}]`);
    console.log(`EVENTLOOP analysing ${path.basename(model)} (${run.ms.toFixed(0)} ms): worst extra delay ${run.worst.toFixed(1)} ms [${run.stalls.join(" ")}]`);
    // On a loaded 2-core machine the OS alone delays timers; only stalls beyond the idle baseline count.
    assert.ok(run.worst < Math.max(50, idle.worst + 25), `worst stall ${run.worst.toFixed(1)} ms (idle baseline ${idle.worst.toFixed(1)} ms)`);
  });

  test("an invalid file gives a model.invalid diagnostic", async () => {
    const uri = vscode.Uri.file(path.join(ws(), "saved", "broken.onnx"));
    await vscode.workspace.fs.writeFile(uri, Buffer.from("this is not a protobuf"));
    await waitFor("model.invalid diagnostic", () => vscode.languages.getDiagnostics(uri).some((d) => d.code === "model.invalid"), 5000);
    await vscode.workspace.fs.delete(uri);
  });

  test("clear diagnostics empties Problems and the tree", async () => {
    await vscode.commands.executeCommand("modelDoctor.clearDiagnostics");
    assert.strictEqual(api.treeChildren().length, 0);
    const uri = vscode.Uri.file(path.join(ws(), "models", "tanh_tiny_init.onnx"));
    assert.strictEqual(vscode.languages.getDiagnostics(uri).length, 0);
  });
});
