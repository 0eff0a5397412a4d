/**
 * An adaptive limit of the requests one connection carries at once (the `"auto"` setting of
 * `maxConcurrentRequestsPerConnection`):
 *
 * - Each request's latency is divided by the least latency of its kind (method and target) in
 *   the last 10 to 20 s. A window of requests (twice the limit, at least {@link MIN_WINDOW})
 *   gives the mean of those ratios and, by Little's law, the connection's throughput in units of
 *   that minimum: requests in flight divided by the mean ratio.
 * - Requests that are not fast (see `ServerProfile.fast`) on a server not known to run
 *   requests concurrently go one at a time: a short call must not wait behind a long one. The
 *   pool finds out by pinging a connection while a request runs (see {@link Limiter.wantsProof}).
 *   The exception is a server whose processes compute on busy cores, while its requests are
 *   alike (see {@link unalike}): a queue in its process then costs no more than one in the pool.
 * - Otherwise, while borrowers wait for a connection, the limit tries the next level up (x1.5,
 *   at least +1). For slow requests the raise is kept only if the throughput grew by {@link GAIN}
 *   of the move's proportion, and the level below is tried in turn; for fast ones it is kept
 *   unless the throughput fell by {@link DROP}. A move that did not pay is taken back and tried
 *   again after a pause that doubles up to {@link MAX_BACKOFF_MS} (reset once nobody waits).
 *
 * A connection whose limit no longer rises (a raise did not pay, one at a time, or its upper
 * bound) is {@link Limiter.saturated}: only then may the pool open another connection for
 * waiting borrowers (see `Growth`). Pure: the caller gives the time. See docs/performance.md.
 */

import { BASELINE_MS, type ServerProfile, unalike } from "./ServerProfile.js"

/** The bounds of a limiter. */
export interface LimiterOptions {
  readonly min: number
  readonly max: number
}

/** The share of a raise's proportion the throughput must grow by for the raise to be kept. */
export const GAIN = 0.4
/** A window's requests: at least this many, and at least the limit (one round of the connection). */
export const MIN_WINDOW = 8
/** The longest pause before a move that did not pay is tried again (the first is {@link FIRST_BACKOFF_MS}). */
export const MAX_BACKOFF_MS = 30_000
export const FIRST_BACKOFF_MS = 500
/** A request counts at most this many times its minimum (one stuck request does not decide alone). */
const MAX_RATIO = 50
/** How long a ceiling of fast requests must hold before the pool counts the connection saturated. */
export const CEILING_HOLDS_MS = 1_000
/** The share by which a raise may lower the throughput of fast requests and still be kept. */
export const DROP = 0.35
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
  private readonly baselines = new Map<string, Baseline>()
  private samples = 0
  private ratios = 0
  private carried = 0
  /** The latency of each of the window's requests (ms), divided by the requests it was sent with. */
  private readonly shares: Array<number> = []
  private demand = false
  /** The move under test: kept if it pays. */
  private trial: Trial | undefined = undefined
  /** Which way the next try goes when nothing is under test. */
  private nextUp = true
  private backoffMs = 0
  private quietUntil = 0
  private atCeiling = false
  /**
   * How much slower than their kind's least latency the requests of the last window ran (the
   * mean ratio, at least 1): a server that shares busy cores runs its requests slower.
   * `undefined` until a window is complete.
   */
  slowdown: number | undefined = undefined
  /** Since when (the caller's clock, ms) the limit has been at a ceiling, for fast requests. */
  private ceilingSince = 0

  constructor(
    private readonly options: LimiterOptions,
    /** What every connection of the pool learns of the server, shared. */
    private readonly profile: ServerProfile
  ) {
    this.limit = options.min
  }

  /** See {@link ServerProfile.wantsProof}. */
  wantsProof(now: number): boolean {
    return this.profile.wantsProof(now)
  }

  /** See {@link ServerProfile.proven}. */
  proven(): void {
    this.profile.proven()
  }

  /** See {@link ServerProfile.disproven}. */
  disproven(): void {
    this.profile.disproven()
  }

  /**
   * Whether raising the limit is not expected to help now: requests that are not fast on a
   * server not known to run them concurrently, the upper bound, or (for fast requests, whose
   * measurements are noisier) a raise that did not pay at least {@link CEILING_HOLDS_MS} ago and
   * none that paid since. The pool opens another connection for waiting borrowers only when
   * every connection is saturated.
   */
  saturated(now: number): boolean {
    if (this.limit >= this.options.max) return true
    // One at a time, known from the shared profile: a new connection has nothing to find out.
    if (this.profile.fast() === false && !this.profile.concurrent) return true
    if (!this.atCeiling) return false
    return this.profile.fast() !== true || now - this.ceilingSince >= CEILING_HOLDS_MS
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
    // Sent alone (or with no more than the least the connection carries): the service time.
    if (inFlight <= this.options.min) this.profile.served(latencyMs)
    if (overtook) this.profile.proven()
    this.carried += inFlight
    // Whether requests are alike matters only on a server not known to run them concurrently.
    // Per request it was sent with: on a server that answers one at a time, a request queued
    // behind others of its kind takes as many times as long, and is no less alike.
    if (!this.profile.concurrent && this.profile.fast() !== true) this.shares.push(latencyMs / Math.max(1, inFlight))
    this.samples++
    if (waiting && inFlight >= this.limit) this.demand = true
    if (this.samples < Math.max(MIN_WINDOW, 2 * this.limit)) return false
    return this.decide(now)
  }

  /** Ends a window: judges the move under test, or tries the next one. */
  private decide(now: number): boolean {
    const slowdown = this.ratios / this.samples
    this.slowdown = slowdown
    const throughput = this.carried / this.samples / slowdown
    const demand = this.demand
    this.samples = 0
    this.ratios = 0
    this.carried = 0
    if (unalike(this.shares)) this.profile.unlike(now)
    this.shares.length = 0
    this.demand = false
    const trial = this.trial
    this.trial = undefined
    // Until the server's service time is known, nothing is tried (and nothing is saturated).
    const fast = this.profile.fast()
    if (fast === undefined) return false
    const { min, max } = this.options
    if (!fast && !this.profile.concurrent) {
      // Slow requests on a server not known to run them concurrently: one at a time, as a
      // request queued behind a slow one would wait for all of it. While its processes compute
      // on busy cores (see `ServerProfile.computes`) and the requests are alike, a request
      // queued in a process waits behind one as short, no longer than in the pool's line, and
      // keeps the process busy while an answer travels back: the limit moves as below.
      const alike = now >= this.profile.unalikeUntil
      if (!(this.profile.coresBusy && this.profile.computes && alike)) {
        this.atCeiling = true
        return this.moveTo(min)
      }
    }
    // With the cores busy, a queue in the process costs no more than one in the pool: the
    // limit moves as for fast requests.
    const lenient = fast || this.profile.coresBusy
    if (trial !== undefined && this.judge(trial, throughput, now, lenient)) return this.moveTo(trial.from)
    if (!demand) {
      // Nobody waited: when they do again, the load changed, and the next try comes sooner.
      this.backoffMs = 0
      return false
    }
    if (now < this.quietUntil) return false
    // Slow requests: at the top, or after a raise that did not pay, the next try is down.
    if (!lenient && (!this.nextUp || this.limit >= max) && this.limit > min) {
      this.trial = { from: this.limit, throughput, up: false }
      return this.moveTo(below(this.limit, min))
    }
    this.nextUp = true
    if (this.limit >= max) return false
    this.trial = { from: this.limit, throughput, up: true }
    return this.moveTo(above(this.limit, max))
  }

  /**
   * Judges a move by the throughput of the window after it. Slow requests: the upper level must
   * do better by GAIN of the move's proportion. Fast requests (`lenient`, also while the cores
   * are busy): a raise is kept unless the throughput fell by {@link DROP} (a queue in the
   * connection costs them little, and less than one in the pool). Answers whether to move back
   * (the next try then goes the other way, after a longer pause).
   */
  private judge(trial: Trial, throughput: number, now: number, lenient: boolean): boolean {
    const upper = trial.up ? { level: this.limit, throughput } : { level: trial.from, throughput: trial.throughput }
    const lower = trial.up ? { level: trial.from, throughput: trial.throughput } : { level: this.limit, throughput }
    const paid =
      lenient && trial.up
        ? throughput >= trial.throughput * (1 - DROP)
        : upper.throughput >= lower.throughput * (1 + GAIN * ((upper.level - lower.level) / lower.level))
    const ceiling = !(trial.up && paid)
    if (ceiling && !this.atCeiling) this.ceilingSince = now
    this.atCeiling = ceiling
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

  /** Moves the limit within its bounds; answers whether it changed. */
  private moveTo(limit: number): boolean {
    const next = Math.max(this.options.min, Math.min(this.options.max, limit))
    if (next === this.limit) return false
    this.limit = next
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
