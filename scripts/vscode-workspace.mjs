// usage: node scripts/vscode-workspace.mjs DIR [--resnet18]
// Fills DIR with the workspace the VS Code test suites expect (scripts/vscode-e2e.sh and
// scripts/vscode-test-electron.mjs): models/ (copies of four fixtures), data/ (the probe data of
// tanh_tiny_init) and, with --resnet18, big/resnet18.onnx, a 47 MB ResNet-18 generated once by
// scripts/bench-models.ts into dist/vscode-test-models/ (the event-loop and cancel tests use it).
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, statSync } from "node:fs";
import path from "node:path";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const [dir, ...flags] = process.argv.slice(2);
if (!dir) { console.error("usage: node scripts/vscode-workspace.mjs DIR [--resnet18]"); process.exit(2); }

const fixtures = path.join(root, "test", "fixtures", "models");
for (const sub of ["models", "data", "big"]) mkdirSync(path.join(dir, sub), { recursive: true });
for (const m of ["tanh_tiny_init", "relu_he_deep", "dead_relu", "tanh_xavier"]) copyFileSync(path.join(fixtures, `${m}.onnx`), path.join(dir, "models", `${m}.onnx`));
copyFileSync(path.join(fixtures, "tanh_tiny_init.probe.npy"), path.join(dir, "data", "tanh_tiny_init.probe.npy"));

if (flags.includes("--resnet18")) {
  const cached = path.join(root, "dist", "vscode-test-models", "resnet18.onnx");
  if (!existsSync(cached) || statSync(cached).size === 0) {
    mkdirSync(path.dirname(cached), { recursive: true });
    const code = "import m from './scripts/bench-models.ts'; import { writeFileSync } from 'node:fs'; writeFileSync(process.argv[1], m.resnet18());";
    execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code, cached], { cwd: root, stdio: "inherit" });
  }
  copyFileSync(cached, path.join(dir, "big", "resnet18.onnx"));
}
