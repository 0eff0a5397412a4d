/**
 * What the connections of one pool learn of their server, shared (see {@link ServerProfile}):
 * whether its requests are fast, whether it runs them concurrently, and whether they are alike.
 * Pure: the caller gives the time. See `Limiter` and docs/performance.md.
 */

/** How long a kind's minimum latency is remembered: two buckets of this length. */
export const BASELINE_MS = 10_000
/**
 * Requests are fast when the quickest sent alone took less than this (ms) and their mean less
 * than {@link SLOW_MEAN_MS}: those are multiplexed while that does not lower the connection's
 * throughput by `Limiter`'s `DROP`. Slower ones are multiplexed only on a server that has shown
 * it runs requests concurrently (it answered a later request, or a ping, before an earlier one):
 * a request queued behind a slow one on a server that answers in order waits for all of it.
 */
export const FAST_MS = 0.5
/** See {@link FAST_MS}: the mean latency (ms) past which requests are not fast. */
export const SLOW_MEAN_MS = 10
/** The weight of one request in the service time (about the last 50 count). */
const SERVICE_WEIGHT = 0.02
/** Requests sent alone before the service time says whether they are slow... */
const KNOWN_AFTER = 16
/** ...after these first ones, which a process still warming up makes slow. */
const WARM_UP = 16
/** How long after a request went out the pool pings its connection to see which answer comes first. */
export const PROOF_DELAY_MS = 0
/** Proofs in a row that show a server runs requests concurrently (see {@link ServerProfile.proven}). */
export const PROOFS = 2
const FIRST_PROOF_PAUSE_MS = 1_000
const MAX_PROOF_PAUSE_MS = 60_000
/**
 * A window whose slowest request took more than this many times its median (see {@link unalike})
 * shows requests unlike (see `ServerProfile.unalikeUntil`): on a server that answers one at a
 * time, one may wait behind another in the process only while they are alike.
 */
export const ALIKE = 10

/**
 * Whether a window's requests are unlike: its slowest took more than {@link ALIKE} times its
 * median (each divided by the requests it was sent with). The median, not the quickest: on busy
 * cores requests of one kind vary by a few times, and one stalled request does not make them
 * unlike. Sorts `shares`.
 */
export const unalike = (shares: Array<number>): boolean => {
  if (shares.length === 0) return false
  shares.sort((a, b) => a - b)
  const median = shares[shares.length >> 1] ?? 0
  return (shares[shares.length - 1] ?? 0) > ALIKE * median
}

/**
 * What the connections of one pool learn of their server, shared so that a new connection knows
 * it at once: its service time (the mean latency of requests sent alone, after the first ones,
 * which a cold process makes slow), and whether it runs requests concurrently.
 */
export class ServerProfile {
  private serviceMs = 0
  private leastMs = Number.POSITIVE_INFINITY
  private alone = 0
  /** The server answered a request (or a ping) before one sent earlier on the same connection. */
  concurrent = false
  /**
   * The pool may not open another process for this server: the machine's cores are busy and its
   * requests already run slower than their best, or its processes compute and no whole core is
   * idle (see `Growth.sharesBusyCores`). A request queued
   * in a process then waits no longer than one queued in the pool, and keeps the process busy
   * while its previous answer travels back: a raise is judged as for fast requests.
   */
  coresBusy = false
  /**
   * Its processes were seen computing (see `ServerCpu`): with the cores busy, a request queued in
   * one of them keeps it busy while an answer travels back, also on a server that answers one
   * request at a time, and a timer's jitter cannot pass for it.
   */
  computes = false
  /**
   * Until when (the limiters' clock) its requests count as unlike: two windows had their slowest
   * take more than {@link ALIKE} times their median (see {@link unalike}), within
   * {@link BASELINE_MS} of each other, in the last {@link BASELINE_MS}.
   */
  unalikeUntil = 0
  /** When a window last showed requests unlike. */
  private unlikeAt = Number.NEGATIVE_INFINITY
  private proofs = 0
  private proofPauseMs = 0
  private nextProofAt = 0

  /**
   * A window showed requests unlike (see {@link unalike}) at `now`: with one before it within
   * {@link BASELINE_MS}, they count as unlike for the next {@link BASELINE_MS}. One alone may be
   * a request this process or the machine stalled (a collection of the heap, a process
   * starting): on a busy machine one 3 ms call took 37 ms among others of 3.4 ms, and the limit
   * of a computing server stayed at 1 for 10 s; a mix of short and long requests shows again.
   */
  unlike(now: number): void {
    if (now - this.unlikeAt <= BASELINE_MS) this.unalikeUntil = now + BASELINE_MS
    this.unlikeAt = now
  }

  /** A request sent alone took `latencyMs`. */
  served(latencyMs: number): void {
    this.alone++
    if (this.alone <= WARM_UP) return
    if (latencyMs < this.leastMs) this.leastMs = latencyMs
    // The plain mean of the first requests, then a slowly moving one.
    this.serviceMs += (latencyMs - this.serviceMs) * Math.max(SERVICE_WEIGHT, 1 / (this.alone - WARM_UP))
  }

  /**
   * Whether its requests are fast: the quickest under {@link FAST_MS} (a round trip with next to
   * no work: waiting behind one costs little) and their mean under {@link SLOW_MEAN_MS} (no long
   * ones among them to wait behind). `undefined` until known.
   */
  fast(): boolean | undefined {
    if (this.alone < WARM_UP + KNOWN_AFTER) return undefined
    return this.leastMs < FAST_MS && this.serviceMs < SLOW_MEAN_MS
  }

  /**
   * Whether the pool should find out now whether the server runs requests concurrently: its
   * requests are slow, it is not known to, and it was not tried lately (the pauses double from a
   * second up to a minute). The pool pings the connection {@link PROOF_DELAY_MS} after a request
   * went out; a ping answered before that request proves it. No caller's request waits for it.
   */
  wantsProof(now: number): boolean {
    // Not while its processes compute: on busy cores one often reads a request and the ping at
    // once, and answers the ping before it computes; and a process that computes on one thread
    // runs one request at a time whatever it answers first.
    if (this.concurrent || this.computes || now < this.nextProofAt || this.fast() !== false) return false
    this.proofPauseMs = Math.min(MAX_PROOF_PAUSE_MS, Math.max(FIRST_PROOF_PAUSE_MS, this.proofPauseMs * 2))
    this.nextProofAt = now + this.proofPauseMs
    return true
  }

  /**
   * The server answered a ping while an earlier request was still running, or a request before
   * one sent earlier: {@link PROOFS} times in a row, it runs them concurrently. Once could be a
   * process that read both at once and answered the quicker first before it computed the other.
   * After the first, the next request is tried at once.
   */
  proven(): void {
    this.proofs++
    if (this.proofs >= PROOFS) this.concurrent = true
    else this.nextProofAt = 0
  }

  /** The server answered a ping only after the request that ran: the proofs start over. */
  disproven(): void {
    this.proofs = 0
  }
}
