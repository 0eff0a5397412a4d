/**
 * Health checks of a pool: ping its idle connections, replace those that fail, top it up to
 * `minConnections`, re-judge its alerts; a check asked for on demand always finds out.
 */
import * as Effect from "effect/Effect"
import type { HealthCheckSchema } from "../internal/responses.js"
import * as Connection from "../internal/connection.js"
import { borrow, release } from "./Admission.js"
import { observeAll, observeHealthCheck } from "./Alerting.js"
import * as Judgement from "./Judgement.js"
import { keepMinimum, remove } from "./Members.js"
import { type Probed, probe } from "./Probe.js"
import { reading } from "./Snapshot.js"
import type { Member, PoolState, Ticket } from "./State.js"

/**
 * The answer of one health check (the body of `POST /pools/{server_name}/health-check`):
 * `healthy` when no connection failed, the pool has a working connection (or needs none) and
 * its breaker is not open; `checked` and `failed` count the connections pinged (an on-demand
 * check of a pool with no idle connection probes one); `reason` says why when not healthy.
 *
 * @since 0.1.0
 * @category models
 */
export type HealthCheckResult = typeof HealthCheckSchema.Type

const WHAT = "health-check ping"

/** Pings one connection; one that fails is marked dead and replaced (without holding the check for its close). */
const checkOne = (state: PoolState, member: Member): Effect.Effect<Probed> => {
  const connection = member.connection
  state.pingsInFlight++
  return probe(connection, state.limits.connectionTimeoutMs, state.scrub, WHAT).pipe(
    Effect.tap((probed) => {
      if (probed.alive) {
        state.streak = 0
        return Effect.void
      }
      Connection.markDead(connection, probed.reason)
      remove(state, member)
      return Effect.logWarning(
        `connection #${connection.id} to "${state.serverName}" ${probed.reason}; replacing it`
      ).pipe(Effect.annotateLogs({ server: state.serverName }))
    }),
    Effect.ensuring(
      Effect.sync(() => {
        state.pingsInFlight--
      })
    )
  )
}

/**
 * What an on-demand check of a pool with no idle connection finds: a busy connection is pinged
 * (its answer waits behind its calls, bounded by `connectionTimeout`); with none open, the pool
 * opens one for the check, and a server that cannot be reached says why.
 */
const probeAny = (state: PoolState): Effect.Effect<Probed> => {
  const busy = state.members.find((member) => !member.removed && Connection.isAlive(member.connection))
  if (busy !== undefined) return checkOne(state, busy)
  const ticket: Ticket = { member: undefined, reused: false }
  return Effect.onExit(
    Effect.suspend(() => borrow(state, ticket, (member) => checkOne(state, member))),
    () => Effect.sync(() => release(state, ticket))
  ).pipe(Effect.catch((error) => Effect.succeed<Probed>({ alive: false, reason: describe(error) })))
}

const describe = (error: { readonly _tag: string }): string =>
  error instanceof Error ? error.message : `the pool could not lend a connection (${error._tag})`

/**
 * Runs one health check now. `onDemand`: a person or a probe asked for it, so a pool with no
 * idle connection still finds out (see {@link probeAny}); the scheduled check leaves busy
 * connections alone, since their calls show whether they work.
 */
export const check = (state: PoolState, onDemand: boolean): Effect.Effect<HealthCheckResult> =>
  Effect.gen(function* () {
    const started = state.clock.currentTimeMillisUnsafe()
    const idle = state.members.filter((m) => m.active === 0 && !m.removed && Connection.isAlive(m.connection))
    let results = yield* Effect.forEach(idle, (member) => checkOne(state, member), { concurrency: "unbounded" })
    if (onDemand && results.length === 0 && state.phase === "open") results = [yield* probeAny(state)]
    const failures = results.filter((probed): probed is Extract<Probed, { alive: false }> => !probed.alive)
    state.counters.healthChecks++
    state.counters.healthCheckFailures += failures.length
    const now = state.clock.currentTimeMillisUnsafe()
    if (failures.length > 0) state.lastHealthCheckFailureAt = now
    yield* observeHealthCheck(state, results.length, failures.length)
    keepMinimum(state)
    yield* observeAll(state)
    const judged = Judgement.judge(reading(state, now), state.thresholds)
    const critical = judged.status === "critical"
    const healthy = failures.length === 0 && !critical
    const reasons = [...failures.map((f) => f.reason), ...(critical ? judged.reasons : [])]
    return {
      server_name: state.serverName,
      healthy,
      checked: results.length,
      failed: failures.length,
      duration_ms: now - started,
      ...(healthy ? {} : { reason: reasons.join("; ") })
    }
  })
