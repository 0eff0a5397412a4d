/**
 * The shape of a benchmark row: what a row module answers (two measured sides, a headline
 * ratio, a target and the table lines), and what `results.json` records for each row.
 */

/** One line of the table: a metric measured on both sides. */
export interface Check {
  readonly metric: string
  readonly baseline: string
  readonly subject: string
  readonly ratio: string
  /** Empty when the line has no target of its own. */
  readonly target: string
  /** null: informational, or the row failed before it could judge. */
  readonly pass: boolean | null
}

/** What a row module measures. */
export interface RowOutcome {
  /** The side measured for comparison, with its `label` and figures. */
  readonly baseline: Readonly<Record<string, unknown>>
  /** The side under test, with its `label` and figures. */
  readonly subject: Readonly<Record<string, unknown>>
  /** The headline ratio; null when it cannot be computed. */
  readonly ratio: number | null
  /** What `ratio` divides by what. */
  readonly ratioOf: string
  readonly target: string
  /** Whether every target of the row was met; null for an informational row. */
  readonly pass: boolean | null
  readonly checks: ReadonlyArray<Check>
  readonly notes?: ReadonlyArray<string>
}

/** A row as `results.json` records it. */
export interface RowResult extends RowOutcome {
  readonly id: number
  readonly name: string
  readonly durationMs: number
  /** Set when the row threw or timed out; its figures are then empty. */
  readonly error?: string
}

/** A row of the suite. */
export interface RowDefinition {
  readonly id: number
  readonly name: string
  /** The target as a sentence, recorded even when the row fails. */
  readonly target: string
  readonly run: () => Promise<RowOutcome>
}

/** A table line; `pass` is computed from `target` by the caller. */
export const check = (
  metric: string,
  baseline: string,
  subject: string,
  ratio = "",
  target = "",
  pass: boolean | null = null
): Check => ({ metric, baseline, subject, ratio, target, pass })

/** Whether every judged value passed: null when none was judged. */
export const allPassed = (values: ReadonlyArray<boolean | null>): boolean | null => {
  const judged = values.filter((value) => value !== null)
  return judged.length === 0 ? null : judged.every(Boolean)
}
