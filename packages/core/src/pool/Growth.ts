/**
 * When a pool with adaptive limits (`maxConcurrentRequestsPerConnection: "auto"`) opens another
 * connection for borrowers in line: only when every connection's limit has stopped rising (see
 * `Limiter.saturated`), one opening at a time (the new connection's limit is found before the
 * next is opened; see {@link mayOpenAnother} for a server known to answer one at a time), not while this process's event loop is what limits the calls (more
 * connections would only share it), for a stdio server only while this machine has a core to
 * spare (another process would only share busy ones), and, for fast requests, while growing
 * pays (see {@link judging}). See docs/performance.md.
 */
import { type Load, recentLoad, SAMPLE_MS } from "./Load.js"
import type { Member, PoolState } from "./State.js"

/** Past this share of its time busy, the event loop is what limits the calls, not the connections. */
export const BUSY_LOOP = 0.85
/** The share by which a new connection must raise the pool's throughput for growth to go on at once. */
export const GROWTH_GAIN = 0.1
/** The longest pause of growth after a connection that did not pay. */
export const MAX_GROWTH_PAUSE_MS = 30_000
const JOINED_AFTER_MS = 250
const JUDGED_OVER_MS = 500
/** Fewer idle cores than this, and another local server process would only share busy ones. */
export const MIN_IDLE_CORES = 0.3
/** See {@link MIN_IDLE_CORES}: the mean slowdown of a server's requests that shows it shares busy cores. */
export const SLOWED = 1.15
const RATE_SAMPLE_MS = 250

const serving = (member: Member): boolean => !member.removed && member.connection.deadReason === undefined

/** Whether every connection that can serve has a limit that no longer rises. */
const allSaturated = (state: PoolState, now: number): boolean => {
  for (const member of state.members) {
    if (serving(member) && member.limiter?.saturated(now) === false) return false
  }
  return true
}

/** The pool's completed requests per second, over the last complete sample of {@link RATE_SAMPLE_MS}. */
const rateOf = (state: PoolState, now: number): number => {
  const growth = state.growth
  if (now - growth.sampleAt >= RATE_SAMPLE_MS) {
    growth.rate = ((state.counters.requests - growth.sampleRequests) * 1000) / (now - growth.sampleAt)
    growth.sampleAt = now
    growth.sampleRequests = state.counters.requests
  }
  return growth.rate
}

/**
 * Whether the connection opened last is still being judged, or did not pay: it had
 * {@link JOINED_AFTER_MS} to join, then the pool's throughput over {@link JUDGED_OVER_MS} must
 * beat the one before it by {@link GROWTH_GAIN}, else growth pauses (1 s, doubling up to
 * {@link MAX_GROWTH_PAUSE_MS}). The connection stays: closing it would only open it again.
 */
const judging = (state: PoolState, now: number): boolean => {
  const growth = state.growth
  const trial = growth.trial
  if (trial === undefined) return now < growth.pausedUntil
  if (trial.mark === undefined) {
    if (now - trial.openedAt >= JOINED_AFTER_MS && state.opening === 0) {
      trial.mark = { at: now, requests: state.counters.requests }
    }
    return true
  }
  if (now - trial.mark.at < JUDGED_OVER_MS) return true
  growth.trial = undefined
  const rate = ((state.counters.requests - trial.mark.requests) * 1000) / (now - trial.mark.at)
  if (rate >= trial.rateBefore * (1 + GROWTH_GAIN)) {
    growth.pauseMs = 0
    return false
  }
  growth.pauseMs = Math.min(MAX_GROWTH_PAUSE_MS, Math.max(1_000, growth.pauseMs * 2))
  growth.pausedUntil = now + growth.pauseMs
  return true
}

/**
 * Whether another process of a stdio server would only share this machine's busy cores: the
 * machine had fewer than {@link MIN_IDLE_CORES} idle while borrowers waited (a reading from
 * before the line says nothing of its load; none yet counts as busy), and the server's requests
 * ran {@link SLOWED} times slower than their best (a server that waits on something else, or
 * sleeps, would gain from another process all the same).
 */
const sharesBusyCores = (state: PoolState, load: Load | undefined, now: number): boolean => {
  const idle = load !== undefined && load.idleCores >= MIN_IDLE_CORES && now - state.growth.lineSince >= 2 * SAMPLE_MS
  if (idle) return false
  let slowdown = 0
  let measured = 0
  for (const member of state.members) {
    const measure = member.limiter?.slowdown
    // A connection that has not completed a window yet says nothing (it would count as not slowed).
    if (measure === undefined || !serving(member)) continue
    slowdown += measure
    measured++
  }
  return measured > 0 && slowdown / measured >= SLOWED
}

/**
 * Whether another connection may open while some are opening. Only for a server known to answer
 * one request at a time: each connection serves one more borrower and its limit is known before
 * it opens (as with a fixed limit); for a stdio server, only while this machine has a core to
 * spare.
 */
const mayOpenAnother = (state: PoolState, load: Load | undefined): boolean => {
  if (state.profile.fast() !== false || state.profile.concurrent) return false
  if (state.server.transport !== "stdio") return true
  return load !== undefined && load.idleCores >= MIN_IDLE_CORES
}

/** Whether a pool with adaptive limits may open a connection for its line now. */
export const mayGrow = (state: PoolState): boolean => {
  if (state.members.length === 0) return true
  const now = performance.now()
  const rate = rateOf(state, now)
  // Fast requests: judged by the pool's throughput. Others (one at a time each): every
  // connection is one more request served at once.
  const fast = state.profile.fast() === true
  if ((fast && judging(state, now)) || !allSaturated(state, now)) return false
  const load = recentLoad(now)
  if (state.opening > 0 && !mayOpenAnother(state, load)) return false
  if (load !== undefined && load.loop > BUSY_LOOP) return false
  if (state.server.transport === "stdio" && sharesBusyCores(state, load, now)) return false
  state.growth.trial = fast ? { openedAt: now, rateBefore: rate, mark: undefined } : undefined
  return true
}

/**
 * A borrower joins the line. The line starts now when it is empty and nobody joined it in the
 * last {@link SAMPLE_MS} (a line that empties between two borrowers of a steady load goes on).
 */
export const joining = (state: PoolState): void => {
  const growth = state.growth
  const now = performance.now()
  if (state.line.size === 0 && now - growth.lastJoinAt > SAMPLE_MS) growth.lineSince = now
  growth.lastJoinAt = now
}

/** What an adaptive pool remembers of its growth. */
export interface Growth {
  /** When the line of borrowers last started (see {@link joining}), and when one last joined it. */
  lineSince: number
  lastJoinAt: number
  sampleAt: number
  sampleRequests: number
  /** Completed requests per second over the last complete sample. */
  rate: number
  /** The connection opened last, under judgement. */
  trial:
    | {
        readonly openedAt: number
        readonly rateBefore: number
        /** The pool's completed requests once the connection had had time to join. */
        mark: { readonly at: number; readonly requests: number } | undefined
      }
    | undefined
  pauseMs: number
  pausedUntil: number
}

/** A pool's growth record, at its start. */
export const make = (): Growth => ({
  lineSince: 0,
  lastJoinAt: 0,
  sampleAt: performance.now(),
  sampleRequests: 0,
  rate: 0,
  trial: undefined,
  pauseMs: 0,
  pausedUntil: 0
})
