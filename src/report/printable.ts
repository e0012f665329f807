import type { Report } from "./types";

// C0 and C1 controls (newline and tab included: a name must not start a line of its own) and the
// bidirectional overrides and isolates, which reorder what a terminal shows.
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/** The string with control and bidi-override characters written as visible escapes (\x1b, \u202e). */
export function printable(s: string): string {
  return s.replace(UNPRINTABLE, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}

/**
 * A copy of the report whose strings are all {@link printable}: names come from the model file,
 * and a text or markdown report must not let them move the cursor, clear lines or print a fake
 * "No problems found." in a terminal or CI log.
 */
export function printableReport(report: Report): Report {
  const walk = (v: unknown): unknown => {
    if (typeof v === "string") return printable(v);
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  return walk(report) as Report;
}
