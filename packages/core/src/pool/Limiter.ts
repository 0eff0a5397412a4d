/**
 * An adaptive limit of the requests one connection carries at once (the `"auto"` setting of
 * `maxConcurrentRequestsPerConnection`), found by climbing the connection's throughput:
 *
 * - Latency is measured against its recent minimum, per kind of request (method and target), so
 *   that a slow tool is not taken for a queue. A window (twice as many requests as the limit, at
 *   least {@link MIN_WINDOW}) gives the mean latency ratio `r` and the throughput in units of
 *   that minimum, `x = in flight / r` (Little's law).
 * - While borrowers wait for a connection (more could be sent), the limit tries the next level
 *   up, and keeps it only if it paid: the throughput grew by at least {@link GAIN} of the move's
 *   proportion. A server that answers one request at a time gains nothing from a second one (its
 *   latency doubles instead) and stays at 1; a concurrent server is raised until it stops
 *   answering faster in total.
 * - A move that did not pay is taken back, and the next try goes the other way after a pause
 *   that doubles up to {@link MAX_BACKOFF_MS}: a level below that does as well is kept, so a
 *   server that became slower (or busier) is followed down as it was followed up.
 *
 * A connection whose limit no longer rises (a raise did not pay, or it is at its upper bound)
 * is {@link Limiter.saturated}: only then does the pool open another connection for waiting
 * borrowers. Pure: the caller gives the time. See docs/performance.md.
 */

/** The bounds of a limiter. */
export interface LimiterOptions {
  readonly min: number
  readonly max: number
}

/** The share of a raise's proportion the throughput must grow by for the raise to be kept. */
export const GAIN = 0.4
/** A window's requests: at least this many, and at least the limit (one round of the connection). */
export const MIN_WINDOW = 8
/** How long a kind's minimum latency is remembered: two buckets of this length. */
export const BASELINE_MS = 10_000
/** The longest pause before a move that did not pay is tried again (the first is {@link FIRST_BACKOFF_MS}). */
export const MAX_BACKOFF_MS = 30_000
export const FIRST_BACKOFF_MS = 500
/** A request counts at most this many times its minimum (one stuck request does not decide alone). */
const MAX_RATIO = 50
/**
 * Requests slower than this on average (ms) are multiplexed only on a server that has shown it
 * runs requests concurrently (it answered a later request before an earlier one): a request
 * queued behind a slow one on a server that answers in order waits for all of it.
 */
export const IN_ORDER_MS = 5
/** The weight of one request in the typical latency (about the last 50 count). */
const TYPICAL_WEIGHT = 0.02
/** Requests seen before the typical latency says whether they are slow. */
const KNOWN_AFTER = 16
/** How long after a slow request went out the pool pings its connection to see which answer comes first. */
export const PROOF_DELAY_MS = 2 * IN_ORDER_MS
const FIRST_PROOF_PAUSE_MS = 1_000
const MAX_PROOF_PAUSE_MS = 60_000
/** The kinds of request a limiter keeps a minimum for; beyond, the oldest kind is dropped. */
const MAX_KINDS = 64

interface Baseline {
  /** The least latency of the current bucket, and of the one before. */
  current: number
  previous: number
  /** When the current bucket started. */
  since: number
}

/** A level under test: the one the limit moved from, its throughput, and which way it moved. */
interface Trial {
  readonly from: number
  readonly throughput: number
  readonly up: boolean
}

/** The next level up from `limit`. */
const above = (limit: number, max: number): number => Math.min(max, Math.max(limit + 1, Math.floor(limit * 1.5)))

/** The next level down from `limit`. */
const below = (limit: number, min: number): number => Math.max(min, Math.min(limit - 1, Math.ceil(limit / 1.5)))

/** The adaptive limit of one connection. */
export class Limiter {
  /** The limit now: whole requests, between the bounds. */
  limit: number
  /** When the limit last changed (the caller's clock, ms). */
  changedAt: number
  private readonly baselines = new Map<string, Baseline>()
  private samples = 0
  private ratios = 0
  /** The mean latency of recent requests (ms), slowly moving: whether they are slow. */
  private typicalMs = 0
  private seen = 0
  /** The server answered a request before one sent earlier on this connection: it runs them concurrently. */
  concurrent = false
  private proofPauseMs = 0
  private nextProofAt = 0
  private carried = 0
  private demand = false
  /** The move under test: kept if it pays. */
  private trial: Trial | undefined = undefined
  /** Which way the next try goes when nothing is under test. */
  private nextUp = true
  private backoffMs = 0
  private quietUntil = 0
  private atCeiling = false

  constructor(
    private readonly options: LimiterOptions,
    now: number
  ) {
    this.limit = options.min
    this.changedAt = now
  }

  /**
   * Whether the pool should find out now whether the server runs requests concurrently: not
   * known yet, and not tried lately (the pauses double up to a minute). The pool pings the
   * connection {@link PROOF_DELAY_MS} after a request went out; a ping answered before that
   * request proves it (see {@link proven}). No caller's request waits for the ping.
   */
  wantsProof(now: number): boolean {
    if (this.concurrent || now < this.nextProofAt || this.typicalMs < IN_ORDER_MS) return false
    this.proofPauseMs = Math.min(MAX_PROOF_PAUSE_MS, Math.max(FIRST_PROOF_PAUSE_MS, this.proofPauseMs * 2))
    this.nextProofAt = now + this.proofPauseMs
    return true
  }

  /** The server answered a ping while an earlier request was still running: it runs them concurrently. */
  proven(): void {
    this.concurrent = true
  }

  /**
   * Whether raising the limit is not expected to help now: a raise did not pay, or the limit is
   * at its upper bound. The pool opens another connection for waiting borrowers only when every
   * connection is saturated.
   */
  get saturated(): boolean {
    return this.atCeiling || this.limit >= this.options.max
  }

  /**
   * Records a request that took `latencyMs`, sent when `inFlight` requests (itself included)
   * were on the connection; `waiting`: borrowers were waiting for a connection when it ended;
   * `overtook`: it was answered while a request sent before it on the connection was not.
   * Answers whether the limit changed.
   */
  record(kind: string, latencyMs: number, inFlight: number, waiting: boolean, overtook: boolean, now: number): boolean {
    const least = this.baseline(kind, latencyMs, now)
    this.ratios += Math.min(MAX_RATIO, latencyMs / Math.max(least, 0.001))
    this.seen++
    // The plain mean of the first requests, then a slowly moving one.
    const weight = Math.max(TYPICAL_WEIGHT, 1 / this.seen)
    this.typicalMs += (latencyMs - this.typicalMs) * weight
    if (overtook) this.concurrent = true
    this.carried += inFlight
    this.samples++
    if (waiting && inFlight >= this.limit) this.demand = true
    if (this.samples < Math.max(MIN_WINDOW, 2 * this.limit)) return false
    return this.decide(now)
  }

  /** Ends a window: judges the move under test, or tries the next one. */
  private decide(now: number): boolean {
    const throughput = this.carried / this.samples / (this.ratios / this.samples)
    // Until enough requests were seen, nothing is tried (and the connection is not saturated).
    const known = this.seen >= KNOWN_AFTER
    const slow = this.typicalMs >= IN_ORDER_MS
    const demand = this.demand
    this.samples = 0
    this.ratios = 0
    this.carried = 0
    this.demand = false
    const trial = this.trial
    this.trial = undefined
    if (trial !== undefined) {
      if (this.judge(trial, throughput, now)) return this.moveTo(trial.from, now)
    }
    if (!demand) {
      // Nobody waited: when they do again, the load changed, and the next try comes sooner.
      this.backoffMs = 0
      return false
    }
    if (now < this.quietUntil) return false
    const { min, max } = this.options
    // At the top, the only way to try is down.
    if ((!this.nextUp || this.limit >= max) && this.limit > min) {
      this.trial = { from: this.limit, throughput, up: false }
      return this.moveTo(below(this.limit, min), now)
    }
    this.nextUp = true
    if (this.limit >= max) return false
    if (!known) return false
    if (slow && !this.concurrent) {
      // Slow requests on a server not known to run them concurrently: one at a time.
      this.atCeiling = true
      return false
    }
    this.trial = { from: this.limit, throughput, up: true }
    return this.moveTo(above(this.limit, max), now)
  }

  /**
   * Judges a move by the throughput of the window after it: the upper level must do better by
   * GAIN of the move's proportion. Answers whether to move back (the move was wrong: the next
   * try goes the other way, after a longer pause).
   */
  private judge(trial: Trial, throughput: number, now: number): boolean {
    const upper = trial.up ? { level: this.limit, throughput } : { level: trial.from, throughput: trial.throughput }
    const lower = trial.up ? { level: trial.from, throughput: trial.throughput } : { level: this.limit, throughput }
    const paid = upper.throughput >= lower.throughput * (1 + GAIN * ((upper.level - lower.level) / lower.level))
    this.atCeiling = !(trial.up && paid)
    if (trial.up === paid) {
      // Right: on the same way at once.
      this.backoffMs = 0
      this.nextUp = trial.up
      return false
    }
    this.nextUp = !trial.up
    this.backoffMs = Math.min(MAX_BACKOFF_MS, Math.max(FIRST_BACKOFF_MS, this.backoffMs * 2))
    this.quietUntil = now + this.backoffMs
    return true
  }

  private moveTo(limit: number, now: number): boolean {
    const next = Math.max(this.options.min, Math.min(this.options.max, limit))
    if (next === this.limit) return false
    this.limit = next
    this.changedAt = now
    return true
  }

  /** The least latency of `kind` in the last one or two buckets, this request included. */
  private baseline(kind: string, latencyMs: number, now: number): number {
    let baseline = this.baselines.get(kind)
    if (baseline === undefined) {
      if (this.baselines.size >= MAX_KINDS) {
        const oldest = this.baselines.keys().next()
        if (oldest.done !== true) this.baselines.delete(oldest.value)
      }
      baseline = { current: latencyMs, previous: latencyMs, since: now }
      this.baselines.set(kind, baseline)
      return latencyMs
    }
    if (now - baseline.since >= BASELINE_MS) {
      // A new bucket: a server that became slower for good is judged by its new speed.
      baseline.previous = baseline.current
      baseline.current = latencyMs
      baseline.since = now
    } else if (latencyMs < baseline.current) {
      baseline.current = latencyMs
    }
    return Math.min(baseline.current, baseline.previous)
  }
}
