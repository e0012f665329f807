// Mocha runner inside the VS Code extension host (extensionTestsPath = dist/test/index.js).
// Resolves on 0 failures, rejects otherwise, and prints a plain "N passed, N failed" line.
import Mocha from "mocha";
import * as fs from "node:fs";
import * as path from "node:path";

export function run(): Promise<void> {
  const mocha = new Mocha({ ui: "tdd", color: false, timeout: 60000, grep: process.env.MD_TEST_GREP });
  const only = process.env.MD_TEST_FILES?.split(",");
  for (const f of fs.readdirSync(__dirname).sort()) {
    if (f.endsWith(".test.js") && (!only || only.includes(f))) mocha.addFile(path.join(__dirname, f));
  }
  return new Promise((resolve, reject) => {
    const runner = mocha.run((failures) => {
      console.log(`${runner.stats?.passes ?? mocha.suite.total() - failures} passed, ${failures} failed`);
      if (failures > 0) reject(new Error(`${failures} tests failed.`));
      else resolve();
    });
  });
}
