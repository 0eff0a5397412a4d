/**
 * What the quickstart prints: percentiles, milliseconds and ratios, and a text table whose
 * first column is the row's own name (console.table would add an `(index)` column).
 */

/** The `p`th percentile (nearest rank) of ascending `sorted`; 0 when it is empty. */
export const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted.length === 0 ? 0 : (sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0)

/** p50 and p99 of some latencies, in milliseconds. */
export const summarize = (latencies: ReadonlyArray<number>) => {
  const sorted = latencies.toSorted((a, b) => a - b)
  return { calls: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99) }
}

/** Milliseconds with the digits that mean something: 0.412, 4.12, 41.2, 412. */
export const ms = (value: number): string =>
  value < 1 ? value.toFixed(3) : value < 10 ? value.toFixed(2) : value < 100 ? value.toFixed(1) : value.toFixed(0)

/** `a / b` as `1,234x` (or `2.5x` below 10). */
export const times = (a: number, b: number): string => {
  const ratio = b === 0 ? Number.POSITIVE_INFINITY : a / b
  return `${ratio < 10 ? ratio.toFixed(1) : Math.round(ratio).toLocaleString("en-US")}x`
}

/** A boxed text table: one header row, then `rows`; numbers and ratios are right-aligned. */
export const table = (columns: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string | number>>): string => {
  const cells = rows.map((row) => row.map(String))
  const widths = columns.map((column, i) => Math.max(column.length, ...cells.map((row) => (row[i] ?? "").length)))
  const numeric = columns.map((_, i) => cells.every((row) => /^[\d.,]+( %|x)?$/.test(row[i] ?? "")))
  const line = (values: ReadonlyArray<string>, alignRight: (i: number) => boolean) =>
    `│ ${values
      .map((value, i) => (alignRight(i) ? value.padStart(widths[i] ?? 0) : value.padEnd(widths[i] ?? 0)))
      .join(" │ ")} │`
  const rule = (left: string, middle: string, right: string) =>
    `${left}${widths.map((width) => "─".repeat(width + 2)).join(middle)}${right}`
  return [
    rule("┌", "┬", "┐"),
    line(columns, () => false),
    rule("├", "┼", "┤"),
    ...cells.map((row) => line(row, (i) => numeric[i] === true)),
    rule("└", "┴", "┘")
  ].join("\n")
}
