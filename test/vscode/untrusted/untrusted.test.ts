// Restricted mode: code-server started with workspace trust enabled and the trust prompt off, so the
// workspace stays untrusted (scripts/vscode-e2e.sh, part "untrusted"). Only static analysis may run:
// the model is never executed and probe data files are never read.
import * as assert from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import * as vscode from "vscode";
import type { ModelDoctorApi } from "../../../extension/extension";
import type { Report } from "../../../src/report/types";
import { activate, EXT_ID, waitFor, waitIdle, ws } from "../helpers";

let api: ModelDoctorApi;

suite("ONNX Model Doctor in an untrusted workspace", () => {
  suiteSetup(async () => {
    api = await activate();
  });

  test("the workspace is untrusted and the extension is active (limited support)", () => {
    assert.strictEqual(vscode.workspace.isTrusted, false);
    assert.ok(vscode.extensions.getExtension(EXT_ID)?.isActive);
  });

  test("Analyze Model runs static analysis only: weight findings, no activation statistics", async () => {
    const uri = vscode.Uri.file(path.join(ws(), "models", "tanh_tiny_init.onnx"));
    const report = await vscode.commands.executeCommand<Report | undefined>("modelDoctor.analyze", uri);
    assert.ok(report, "a report");
    assert.strictEqual(report.probe.ran, false, "the model was not run");
    assert.ok(report.layers.every((l) => !l.activation), "no activation statistics");
    const codes = vscode.languages.getDiagnostics(uri).map((d) => String(d.code));
    assert.ok(codes.filter((c) => c === "init.scale-small").length >= 9, `diagnostics: ${codes.join(", ")}`);
    assert.ok(!codes.includes("activation.vanishing"), "activation findings need the probe");
    assert.strictEqual(api.store.get(uri)?.staticOnly, true);
    const tree = api.treeChildren().map((n) => api.tree.getTreeItem(n));
    assert.ok(tree.some((i) => String(i.description).includes("(static)")), "the tree marks the report as static");
  });

  test("Analyze with Probe Data… does not read the data file: static analysis only", async () => {
    const uri = vscode.Uri.file(path.join(ws(), "models", "dead_relu.onnx"));
    const data = vscode.Uri.file(path.join(ws(), "data", "tanh_tiny_init.probe.npy"));
    const report = await vscode.commands.executeCommand<Report | undefined>("modelDoctor.analyzeWithData", uri, data);
    assert.ok(report, "a report");
    assert.strictEqual(report.probe.ran, false);
    assert.deepStrictEqual(report.probe.inputs.filter((i) => i.source === "file"), []);
    assert.ok(!vscode.languages.getDiagnostics(uri).some((d) => d.code === "activation.dead"), "dead units are found only by running the model");
  });

  test("the data-files setting is ignored and lint on save stays static", async () => {
    await waitIdle(api);
    const dir = path.join(ws(), "saved");
    fs.mkdirSync(dir, { recursive: true });
    const uri = vscode.Uri.file(path.join(dir, "tiny.onnx"));
    await vscode.workspace.fs.writeFile(uri, fs.readFileSync(path.join(ws(), "models", "tanh_tiny_init.onnx")));
    const stored = await waitFor("a report of the saved model", () => api.store.get(uri), 15000);
    assert.strictEqual(stored.report.probe.ran, false);
    assert.strictEqual(stored.staticOnly, true);
    assert.ok(vscode.languages.getDiagnostics(uri).some((d) => d.code === "init.scale-small"));
    await vscode.workspace.fs.delete(uri);
  });
});
