/**
 * When a pool with adaptive limits (`maxConcurrentRequestsPerConnection: "auto"`) opens another
 * connection for borrowers in line: only when every connection's limit has stopped rising (see
 * `Limiter.saturated`); one opening at a time, since the new connection's limit is found before
 * the next is opened (see {@link mayOpenAnother} for a server known to answer one at a time);
 * not while this process's event loop is what limits the calls (more connections would only
 * share it); for a stdio server, not while it would only share busy cores (see
 * {@link sharesBusyCores}), unless its requests are unlike; and, for fast requests, while
 * growing pays (see {@link judging}).
 * The rules are pure (the caller gives the time); {@link mayGrow} reads the pool and the clock.
 * See docs/performance.md.
 */
import { type Load, recentLoad, SAMPLE_MS } from "./Load.js"
import { ServerCpu } from "./ServerCpu.js"
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
/** How often a line that nobody joins is looked at again as its requests end (see {@link lookAgain}). */
export const LOOK_AGAIN_MS = 50
/**
 * How long borrowers may wait before requests whose speed is still unknown count as slow: fast
 * ones would have made it known by then (see {@link oneAtATime}).
 */
export const UNKNOWN_SLOW_MS = 250

const serving = (member: Member): boolean => !member.removed && member.connection.deadReason === undefined

/**
 * Whether the pool grows as for a server that answers one request at a time (each connection
 * carries its least): one known to, or one not known to run requests concurrently whose requests
 * are still of unknown speed after borrowers waited {@link UNKNOWN_SLOW_MS} (`lineAgeMs`). The
 * speed is known after the first 32 requests sent alone; a tool of a second would keep a burst
 * on the connections it found for half a minute each.
 */
export const oneAtATime = (fast: boolean | undefined, concurrent: boolean, lineAgeMs: number): boolean =>
  !concurrent && (fast === false || (fast === undefined && lineAgeMs >= UNKNOWN_SLOW_MS))

/** Whether every connection that can serve has a limit that no longer rises. */
const allSaturated = (state: PoolState, now: number): boolean => {
  for (const member of state.members) {
    if (serving(member) && member.limiter?.saturated(now) === false) return false
  }
  return true
}

/** Samples the pool's completed requests per second, over the last complete {@link RATE_SAMPLE_MS}. */
export const sampleRate = (growth: Growth, requests: number, now: number): void => {
  if (now - growth.sampleAt < RATE_SAMPLE_MS) return
  growth.rate = ((requests - growth.sampleRequests) * 1000) / (now - growth.sampleAt)
  growth.sampleAt = now
  growth.sampleRequests = requests
}

/**
 * Whether the connection opened last is still being judged, or did not pay: it had
 * {@link JOINED_AFTER_MS} to join, then the pool's throughput over {@link JUDGED_OVER_MS} must
 * beat the one before it by {@link GROWTH_GAIN}, else growth pauses (1 s, doubling up to
 * {@link MAX_GROWTH_PAUSE_MS}). The connection stays: closing it would only open it again.
 */
export const judging = (growth: Growth, now: number, opening: number, requests: number): boolean => {
  const trial = growth.trial
  if (trial === undefined) return now < growth.pausedUntil
  if (trial.mark === undefined) {
    if (now - trial.openedAt >= JOINED_AFTER_MS && opening === 0) trial.mark = { at: now, requests }
    return true
  }
  if (now - trial.mark.at < JUDGED_OVER_MS) return true
  growth.trial = undefined
  const rate = ((requests - trial.mark.requests) * 1000) / (now - trial.mark.at)
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
 * machine had fewer than {@link MIN_IDLE_CORES} idle while borrowers waited (`lineAgeMs`: how
 * long they have; a reading from before the line says nothing of its load, and none yet counts
 * as busy), and the server's requests ran {@link SLOWED} times slower than their best (the mean
 * of the connections' `slowdowns`, those not measured yet left out; a server that waits on
 * something else, or sleeps, would gain from another process all the same). A server whose
 * processes are seen computing (`computes`, see `ServerCpu`) needs a core of its own for one
 * more: fewer than 1 - {@link MIN_IDLE_CORES} idle are busy cores for it, slowed or not yet.
 */
export const sharesBusyCores = (
  load: Load | undefined,
  lineAgeMs: number,
  slowdowns: Iterable<number | undefined>,
  computes = false
): boolean => {
  const read = load !== undefined && lineAgeMs >= 2 * SAMPLE_MS
  if (computes) return !(read && load.idleCores >= 1 - MIN_IDLE_CORES)
  if (read && load.idleCores >= MIN_IDLE_CORES) return false
  let sum = 0
  let measured = 0
  for (const slowdown of slowdowns) {
    if (slowdown === undefined) continue
    sum += slowdown
    measured++
  }
  return measured > 0 && sum / measured >= SLOWED
}

/** The process ids of the connections that serve. */
function* pidsOf(state: PoolState): Generator<number> {
  for (const member of state.members) {
    const pid = member.connection.pid
    if (serving(member) && pid !== undefined) yield pid
  }
}

/** The slowdowns of the connections that serve (see `Limiter.slowdown`). */
function* slowdownsOf(state: PoolState): Generator<number | undefined> {
  for (const member of state.members) if (serving(member)) yield member.limiter?.slowdown
}

/**
 * Whether another connection may open while some are opening, for a server that answers one
 * request at a time or is taken for one (see {@link oneAtATime}): each connection serves one more
 * borrower and its limit is known before it opens (as with a fixed limit); for a stdio server,
 * only while this machine has a core to spare beyond one for each process starting (a starting
 * process computes, and the reading is from before it: without that, one reading of idle cores
 * opened a process per borrower in line).
 */
const mayOpenAnother = (state: PoolState, load: Load | undefined): boolean => {
  if (state.server.transport !== "stdio") return true
  return coreToSpare(load, state.opening)
}

/**
 * Whether this machine has a core to spare for one more process: {@link MIN_IDLE_CORES} idle
 * beyond one core for each of the `starting` processes, which the reading does not show yet.
 */
export const coreToSpare = (load: Load | undefined, starting: number): boolean =>
  load !== undefined && load.idleCores - starting >= MIN_IDLE_CORES

/** Whether a pool with adaptive limits may open a connection for its line now. */
export const mayGrow = (state: PoolState): boolean => {
  if (state.members.length === 0) return true
  const now = performance.now()
  const growth = state.growth
  growth.askedAt = now
  const requests = state.counters.requests
  sampleRate(growth, requests, now)
  // Fast requests: judged by the pool's throughput. Others (one at a time each): every
  // connection is one more request served at once.
  const speed = state.profile.fast()
  const fast = speed === true
  const load = recentLoad(now)
  // Read on every ask, so that the limits know it also while they still rise.
  const stdio = state.server.transport === "stdio"
  if (stdio && growth.cpu.due(now)) growth.cpu.read(pidsOf(state), now, growth.lineSince)
  const computes = stdio ? growth.cpu.computes() : false
  const coresBusy = stdio && sharesBusyCores(load, now - growth.lineSince, slowdownsOf(state), computes === true)
  state.profile.coresBusy = coresBusy
  state.profile.computes = computes === true
  // Each connection of a server that answers one at a time carries its least: nothing to wait for.
  const single = oneAtATime(speed, state.profile.concurrent, now - growth.lineSince)
  if ((fast && judging(growth, now, state.opening, requests)) || !(single || allSaturated(state, now))) return false
  if (state.opening > 0 && !(single && mayOpenAnother(state, load))) return false
  if (load !== undefined && load.loop > BUSY_LOOP) return false
  // Until its processes were read twice, whether they compute is not known: another might only
  // share the cores. On busy cores another process is opened only for requests unlike each other
  // (see `ServerProfile.unalikeUntil`): there, processes that share the cores let a short call
  // through while a long one runs, where the line would make it wait for a process to finish.
  if ((coresBusy && now >= state.profile.unalikeUntil) || computes === undefined) return false
  growth.trial = fast ? { openedAt: now, rateBefore: growth.rate, mark: undefined } : undefined
  return true
}

/**
 * Whether the pool should ask again whether it may grow, as a request ends while borrowers wait:
 * it last asked at least {@link LOOK_AGAIN_MS} ago. The pool asks when a borrower joins the line,
 * but what lets it grow (limits that stopped rising, a reading of the cores) also comes later,
 * and a burst whose borrowers all joined at once would otherwise wait on the connections it found.
 */
export const lookAgain = (growth: Growth, now: number): boolean => now - growth.askedAt >= LOOK_AGAIN_MS

/**
 * A borrower joins the line, where `waiting` wait already. The line starts now when it is empty
 * and nobody joined it in the last {@link SAMPLE_MS} (a line that empties between two borrowers
 * of a steady load goes on).
 */
export const joining = (growth: Growth, waiting: number, now: number): void => {
  if (waiting === 0 && now - growth.lastJoinAt > SAMPLE_MS) growth.lineSince = now
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
  /** When the pool last asked whether it may grow (see {@link lookAgain}). */
  askedAt: number
  /** What its server's processes compute (stdio servers; see `ServerCpu`). */
  readonly cpu: ServerCpu
}

/** A pool's growth record, at its start. */
export const make = (now: number = performance.now()): Growth => ({
  lineSince: 0,
  lastJoinAt: 0,
  sampleAt: now,
  sampleRequests: 0,
  rate: 0,
  trial: undefined,
  pauseMs: 0,
  pausedUntil: 0,
  askedAt: Number.NEGATIVE_INFINITY,
  cpu: new ServerCpu()
})
