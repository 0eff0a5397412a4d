/**
 * Summary statistics of samples (nearest-rank percentiles, median, mean) and the number
 * formats the table uses for times, rates, byte counts and ratios.
 */

/** Latency figures of a set of samples, in milliseconds. */
export interface LatencySummary {
  readonly samples: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly meanMs: number
  readonly maxMs: number
}

/** The nearest-rank percentile `p` (0 to 100) of samples sorted in increasing order; 0 when there are none. */
export const percentileSorted = (sorted: ReadonlyArray<number>, p: number): number => {
  if (sorted.length === 0) return 0
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)))
  return sorted[rank - 1] ?? 0
}

/** The nearest-rank percentile `p` (0 to 100) of samples in any order. */
export const percentile = (samples: ReadonlyArray<number>, p: number): number =>
  percentileSorted(
    samples.toSorted((a, b) => a - b),
    p
  )

/** The median of samples in any order. */
export const median = (samples: ReadonlyArray<number>): number => percentile(samples, 50)

/** The arithmetic mean; 0 when there are no samples. */
export const mean = (samples: ReadonlyArray<number>): number =>
  samples.length === 0 ? 0 : samples.reduce((sum, x) => sum + x, 0) / samples.length

/** p50, p99, mean and max of latency samples in milliseconds. */
export const summarize = (samples: ReadonlyArray<number>): LatencySummary => {
  const sorted = samples.toSorted((a, b) => a - b)
  return {
    samples: sorted.length,
    p50Ms: round(percentileSorted(sorted, 50), 4),
    p99Ms: round(percentileSorted(sorted, 99), 4),
    meanMs: round(mean(sorted), 4),
    maxMs: round(sorted.at(-1) ?? 0, 4)
  }
}

/** `value` rounded to `digits` decimals. */
export const round = (value: number, digits = 2): number => {
  const factor = 10 ** digits
  return Math.round(value * factor) / factor
}

/** `a / b`, or null when `b` is 0 or either is not finite. */
export const ratio = (a: number, b: number): number | null =>
  b === 0 || !Number.isFinite(a) || !Number.isFinite(b) ? null : a / b

/** A duration in ms as `850 µs`, `1.24 ms` or `2.31 s`. */
export const formatMs = (ms: number): string => {
  if (ms < 1) return `${(ms * 1000).toFixed(0)} µs`
  if (ms < 1000) return `${ms.toFixed(ms < 10 ? 2 : 1)} ms`
  return `${(ms / 1000).toFixed(2)} s`
}

/** A rate as `12,345 calls/s`. */
export const formatRate = (perSecond: number): string => `${Math.round(perSecond).toLocaleString("en-US")} calls/s`

/** A byte count as `812 B`, `45.3 KB` or `12.1 MB` (1 KB = 1024 B). */
export const formatBytes = (bytes: number): string => {
  const abs = Math.abs(bytes)
  if (abs < 1024) return `${bytes.toFixed(0)} B`
  if (abs < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`
}

/** A ratio as `1.07x`, `1,385x` for large ones, or `n/a`. */
export const formatRatio = (value: number | null): string => {
  if (value === null) return "n/a"
  if (value >= 100) return `${Math.round(value).toLocaleString("en-US")}x`
  return `${value.toFixed(2)}x`
}

/** A fraction as a percentage, `99.92 %`. */
export const formatPercent = (fraction: number): string => `${(fraction * 100).toFixed(2)} %`
