/**
 * When a pool with adaptive limits (`maxConcurrentRequestsPerConnection: "auto"`) opens another
 * connection for borrowers in line: only when every connection's limit has stopped rising (see
 * `Limiter.saturated`), one opening at a time, not while this process's event loop is what
 * limits the calls, and only while growing pays: a connection that did not raise the pool's
 * throughput by {@link GROWTH_GAIN} stops growth for a pause that doubles up to
 * {@link MAX_GROWTH_PAUSE_MS}. See docs/performance.md.
 */
import type { PoolState } from "./State.js"

/** The share by which a new connection must raise the pool's throughput for growth to go on. */
export const GROWTH_GAIN = 0.1
/** The longest pause of growth after a connection that did not pay. */
export const MAX_GROWTH_PAUSE_MS = 30_000
/** Past this share of its time busy, the event loop is what limits the calls, not the connections. */
export const BUSY_LOOP = 0.85
/** How long after it was opened a new connection is taken to serve its share. */
const JOINED_AFTER_MS = 250
/** How long the pool's throughput is measured after that, before the connection is judged. */
const JUDGED_OVER_MS = 500
const RATE_SAMPLE_MS = 250
const LOOP_SAMPLE_MS = 100

/** What a pool remembers of its growth. */
export interface Growth {
  /** The pool's completed requests at the start of the current rate sample. */
  sampleAt: number
  sampleRequests: number
  /** Requests per second over the last complete sample. */
  rate: number
  /** The connection opened last, under judgement. */
  trial:
    | {
        readonly openedAt: number
        readonly rateBefore: number
        /** The pool's completed requests when the new connection had had time to join. */
        mark: { readonly at: number; readonly requests: number } | undefined
      }
    | undefined
  pauseMs: number
  pausedUntil: number
}

/** A pool's growth record, at its start. */
export const make = (): Growth => ({
  sampleAt: performance.now(),
  sampleRequests: 0,
  rate: 0,
  trial: undefined,
  pauseMs: 0,
  pausedUntil: 0
})

let loop = { at: 0, utilization: 0, reading: performance.eventLoopUtilization() }

/** How busy this process's event loop was over the last {@link LOOP_SAMPLE_MS} or more (0..1). */
const loopUtilization = (now: number): number => {
  if (now - loop.at >= LOOP_SAMPLE_MS) {
    const reading = performance.eventLoopUtilization()
    loop = { at: now, utilization: performance.eventLoopUtilization(reading, loop.reading).utilization, reading }
  }
  return loop.utilization
}

/** The pool's completed requests per second, over the last complete sample. */
const rateOf = (state: PoolState, now: number): number => {
  const growth = state.growth
  const elapsed = now - growth.sampleAt
  if (elapsed >= RATE_SAMPLE_MS) {
    growth.rate = ((state.counters.requests - growth.sampleRequests) * 1000) / elapsed
    growth.sampleAt = now
    growth.sampleRequests = state.counters.requests
  }
  return growth.rate
}

/** Whether every connection that can serve has a limit that no longer rises. */
const allSaturated = (state: PoolState): boolean => {
  for (const member of state.members) {
    const serving = !member.removed && member.connection.deadReason === undefined
    if (serving && member.limiter?.saturated === false) return false
  }
  return true
}

/** Whether the last connection opened is still being judged, or was judged not to pay. */
const waitingOnTrial = (state: PoolState, now: number): boolean => {
  const growth = state.growth
  const trial = growth.trial
  if (trial === undefined) return now < growth.pausedUntil
  if (trial.mark === undefined) {
    if (now - trial.openedAt < JOINED_AFTER_MS || state.opening > 0) return true
    trial.mark = { at: now, requests: state.counters.requests }
    return true
  }
  if (now - trial.mark.at < JUDGED_OVER_MS) return true
  const rateAfter = ((state.counters.requests - trial.mark.requests) * 1000) / (now - trial.mark.at)
  growth.trial = undefined
  if (rateAfter >= trial.rateBefore * (1 + GROWTH_GAIN)) {
    growth.pauseMs = 0
    return false
  }
  growth.pauseMs = Math.min(MAX_GROWTH_PAUSE_MS, Math.max(1_000, growth.pauseMs * 2))
  growth.pausedUntil = now + growth.pauseMs
  return true
}

/** Whether a pool with adaptive limits may open a connection for its line now. */
export const mayGrow = (state: PoolState): boolean => {
  if (state.members.length === 0) return true
  const now = performance.now()
  // Judged first: a trial must end even while a connection's limit is still moving.
  if (waitingOnTrial(state, now)) return false
  if (state.opening > 0 || !allSaturated(state)) return false
  return loopUtilization(now) <= BUSY_LOOP
}

/** Notes that a connection is being opened for the line: its effect on throughput is judged next. */
export const grew = (state: PoolState): void => {
  const now = performance.now()
  state.growth.trial = { openedAt: now, rateBefore: rateOf(state, now), mark: undefined }
}
