// The report's stylesheet (installed as a constructable stylesheet, so it needs no inline <style>).
// Colours come from VS Code's --vscode-* theme variables; the fallbacks are for the standalone HTML export.
export const CSS = `
:root { color-scheme: light dark; }
body { font-family: var(--vscode-font-family, system-ui, sans-serif); font-size: var(--vscode-font-size, 13px);
  color: var(--vscode-foreground, #ccc); background: var(--vscode-editor-background, #1e1e1e); margin: 0; padding: 0 20px 40px; }
h1 { font-size: 1.5em; margin: 16px 0 4px; word-break: break-all; }
h2 { font-size: 1.15em; margin: 24px 0 8px; border-bottom: 1px solid var(--vscode-panel-border, #444); padding-bottom: 4px; }
.meta { opacity: .85; margin-bottom: 8px; }
.badges { display: flex; align-items: center; gap: 4px; flex-wrap: wrap; }
.actions { margin-top: 10px; }
.notice { border-left: 3px solid var(--vscode-editorWarning-foreground, #cca700); padding: 6px 10px;
  background: var(--vscode-textBlockQuote-background, rgba(127,127,127,.1)); }
.status { display: flex; gap: 10px; align-items: center; padding: 12px 0; }
.status.error { color: var(--vscode-errorForeground, #f48771); }
ul.findings { list-style: none; padding: 0 4px 0 0; margin: 0; max-height: 45vh; overflow-y: auto; }
.finding { border: 1px solid var(--vscode-panel-border, #444); border-left-width: 4px; border-radius: 3px; padding: 8px 10px; margin: 6px 0; cursor: pointer; }
.finding:focus { outline: 1px solid var(--vscode-focusBorder, #007fd4); outline-offset: 1px; }
.finding.sev-error { border-left-color: var(--vscode-editorError-foreground, #f14c4c); }
.finding.sev-warning { border-left-color: var(--vscode-editorWarning-foreground, #cca700); }
.finding.sev-info { border-left-color: var(--vscode-editorInfo-foreground, #3794ff); }
.finding.active, .finding.selected { background: var(--vscode-list-activeSelectionBackground, rgba(0,127,212,.25)); }
.finding-head { display: flex; gap: 8px; align-items: baseline; margin-bottom: 4px; }
.finding.repeat { padding: 3px 10px; margin: 2px 0; }
.finding.repeat .finding-head { margin-bottom: 0; }
.repeat-note { opacity: .75; font-style: italic; }
.sev { text-transform: uppercase; font-size: .8em; font-weight: 600; }
.sev.sev-error { color: var(--vscode-editorError-foreground, #f14c4c); }
.sev.sev-warning { color: var(--vscode-editorWarning-foreground, #cca700); }
.sev.sev-info { color: var(--vscode-editorInfo-foreground, #3794ff); }
.layer { font-family: var(--vscode-editor-font-family, monospace); opacity: .9; }
.evidence { font-family: var(--vscode-editor-font-family, monospace); font-size: .9em; opacity: .75; margin: 4px 0; word-break: break-word; }
.fix { margin-top: 4px; }
.chart-grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 16px; }
figure { margin: 0; }
figcaption { font-weight: 600; margin-bottom: 4px; }
.chart-box { position: relative; height: 260px; }
.note { opacity: .75; font-size: .9em; }
.hist-grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 10px; margin-top: 8px; }
.hist-cell { border: 1px solid var(--vscode-panel-border, #444); border-radius: 3px; padding: 4px 6px; }
.hist-cell.selected { outline: 2px solid var(--vscode-focusBorder, #007fd4); }
.hist-cell figcaption { font-weight: normal; font-size: .85em; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.hist-name { font-weight: 600; }
.hist-box { position: relative; height: 90px; }
table.layers { border-collapse: collapse; width: 100%; font-size: .92em; }
table.layers th, table.layers td { text-align: left; padding: 3px 8px; border-bottom: 1px solid var(--vscode-panel-border, #333); }
table.layers tr.selected td { background: var(--vscode-list-activeSelectionBackground, rgba(0,127,212,.25)); }
table.layers tbody tr { cursor: pointer; }
table.layers tbody tr:focus { outline: 1px solid var(--vscode-focusBorder, #007fd4); }
.chart-canvas:focus, .hist-cell:focus { outline: 2px solid var(--vscode-focusBorder, #007fd4); outline-offset: 2px; }
.hist-cell { cursor: pointer; }
.readout { font-family: var(--vscode-editor-font-family, monospace); font-size: .9em; min-height: 1.4em; margin: 0 0 8px;
  padding: 4px 8px; border-left: 3px solid var(--vscode-focusBorder, #007fd4); background: var(--vscode-textBlockQuote-background, rgba(127,127,127,.1)); }
@media (forced-colors: active) { .finding.active, .finding.selected, table.layers tr.selected td { outline: 2px solid Highlight; } }
`;
