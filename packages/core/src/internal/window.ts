/**
 * Counts of calls and failures over a sliding window of time, in buckets, so that recording
 * a call is a few array operations and the window forgets old calls on its own.
 */

/** Calls and failures in a sliding window. */
export interface SlidingWindow {
  /** Counts one call at time `now` (milliseconds). */
  readonly record: (now: number, failed: boolean) => void
  /** The calls and failures of the window ending at `now`. */
  readonly totals: (now: number) => { readonly requests: number; readonly errors: number }
}

/** Creates a window of `windowMs` split into `buckets` buckets. */
export const make = (windowMs: number, buckets = 12): SlidingWindow => {
  const bucketMs = Math.max(1, windowMs / buckets)
  const requests = new Float64Array(buckets)
  const errors = new Float64Array(buckets)
  // The bucket number (time / bucketMs) each slot holds; -1 for none.
  const stamps = new Float64Array(buckets).fill(-1)
  return {
    record: (now, failed) => {
      const bucket = Math.floor(now / bucketMs)
      const slot = bucket % buckets
      if (stamps[slot] !== bucket) {
        stamps[slot] = bucket
        requests[slot] = 0
        errors[slot] = 0
      }
      requests[slot] = (requests[slot] ?? 0) + 1
      if (failed) errors[slot] = (errors[slot] ?? 0) + 1
    },
    totals: (now) => {
      const bucket = Math.floor(now / bucketMs)
      let r = 0
      let e = 0
      for (let slot = 0; slot < buckets; slot++) {
        const stamp = stamps[slot] ?? -1
        if (stamp > bucket - buckets && stamp <= bucket) {
          r += requests[slot] ?? 0
          e += errors[slot] ?? 0
        }
      }
      return { requests: r, errors: e }
    }
  }
}
