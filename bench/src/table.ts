/**
 * Renders the rows as a plain-text table: one line per metric, the row's id and name on its
 * first line, and a verdict per judged metric (PASS, FAIL, ERROR, or `-` when informational).
 */
import type { RowResult } from "./row.ts"

const header = ["id", "row", "metric", "baseline", "subject", "ratio", "target", "result"] as const

const verdict = (pass: boolean | null): string => (pass === null ? "-" : pass ? "PASS" : "FAIL")

/** The table lines of `rows`. */
export const renderTable = (rows: ReadonlyArray<RowResult>): string => {
  const lines: Array<ReadonlyArray<string>> = []
  for (const row of rows) {
    if (row.error !== undefined) {
      lines.push([String(row.id), row.name, "error", "", "", "", "", "ERROR"])
      lines.push(["", "", row.error.split("\n")[0] ?? "", "", "", "", "", ""])
      continue
    }
    row.checks.forEach((c, i) => {
      lines.push([
        i === 0 ? String(row.id) : "",
        i === 0 ? row.name : "",
        c.metric,
        c.baseline,
        c.subject,
        c.ratio,
        c.target,
        c.target === "" && c.pass === null ? "" : verdict(c.pass)
      ])
    })
  }
  const widths = header.map((title, column) =>
    Math.max(title.length, ...lines.map((line) => line[column]?.length ?? 0))
  )
  const format = (cells: ReadonlyArray<string>) =>
    cells
      .map((cell, column) => cell.padEnd(widths[column] ?? 0))
      .join("  ")
      .trimEnd()
  const rule = widths.map((width) => "-".repeat(width)).join("  ")
  const body: Array<string> = []
  lines.forEach((line, i) => {
    // A rule between rows, to tell them apart.
    if (i > 0 && line[0] !== "") body.push(rule)
    body.push(format(line))
  })
  return [format(header), rule, ...body].join("\n")
}

/** One summary line per row: its headline verdict. */
export const renderVerdicts = (rows: ReadonlyArray<RowResult>): string =>
  rows
    .map((row) => {
      const result = row.error !== undefined ? "ERROR" : verdict(row.pass)
      return `${result.padEnd(5)} row ${row.id}: ${row.name} (${row.target})`
    })
    .join("\n")
