/**
 * Opening and closing a pool's connections: connections opened for borrowers at once and to
 * keep `minConnections` with a back-off, dead ones removed, idle ones retired after `maxIdleTime`.
 */
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as Scope from "effect/Scope"
import * as Connection from "../internal/connection.js"
import * as Growth from "./Growth.js"
import { Limiter } from "./Limiter.js"
import type { MCPConnectionError } from "../Errors.js"
import { observeExhaustion } from "./Alerting.js"
import { type Member, type PoolState, alive } from "./State.js"

/** The shortest pause between two re-openings of a pool whose connections keep failing. */
const MIN_BACKOFF_MS = 250

/**
 * How long the pool waits before it opens a connection on its own (to keep `minConnections`)
 * after `streak` failures in a row: nothing after one, then `retryDelay` doubling up to
 * `circuitBreakerRecoveryTimeout`. A server that crash-loops is re-spawned ever more slowly
 * instead of several times a second; a connection that serves a call ends the streak.
 */
export const backoffMs = (state: PoolState): number => {
  if (state.streak <= 1) return 0
  const base = Math.max(state.limits.retryDelayMs, MIN_BACKOFF_MS)
  const cap = Math.max(state.limits.recoveryTimeoutMs, base)
  return Math.min(cap, base * 2 ** Math.min(state.streak - 2, 30))
}

/** Tells whoever waits for the pool to be empty (a drain, a close) once it is. */
export const settleIfEmpty = (state: PoolState): void => {
  if (state.phase === "open" || state.members.length > 0 || state.opening > 0) return
  const onEmpty = state.onEmpty
  state.onEmpty = undefined
  onEmpty?.()
}

/**
 * Starts opening one connection in the background. `demand`: a borrower waits for it, so it is
 * opened at once; otherwise (keeping `minConnections`) after the back-off. The new connection
 * goes to `adopt`.
 */
export const open = (state: PoolState, demand: boolean): Fiber.Fiber<void> => {
  state.opening++
  return state.background(openOne(state, demand))
}

const openOne = (state: PoolState, demand: boolean): Effect.Effect<void> => {
  let counted = true
  const done = () => {
    if (!counted) return
    counted = false
    state.opening--
  }
  const delay = demand ? 0 : backoffMs(state)
  const connect = Effect.uninterruptibleMask((restore) =>
    Effect.gen(function* () {
      if (state.phase !== "open") return
      const scope = yield* Scope.make()
      const started = performance.now()
      const exit = yield* Effect.exit(
        restore(Connection.make(connectionOptions(state, true)).pipe(Scope.provide(scope)))
      )
      done()
      if (Exit.isFailure(exit)) {
        yield* Scope.close(scope, exit)
        const error = Exit.findErrorOption(exit)
        if (error._tag === "Some") yield* openFailed(state, error.value)
        return
      }
      state.telemetry.record(state.telemetry.createTime, (performance.now() - started) / 1000)
      const member = memberOf(state, exit.value, scope, demand)
      if (state.phase !== "open" || !Connection.isAlive(exit.value)) {
        member.removed = true
        closeRemoved(state, member)
        return
      }
      state.members.push(member)
      state.adopt(member)
      // A pool that grew for a burst of borrowers is judged again: they joined it while it
      // still had room to grow.
      if (state.line.size > 0) yield* observeExhaustion(state, 0)
    })
  )
  const waited = delay > 0 ? Effect.andThen(backOff(state, delay), connect) : connect
  return Effect.ensuring(
    waited,
    Effect.suspend(() => {
      done()
      settleIfEmpty(state)
      // Borrowers held past their deadline for this opening get their MCPPoolExhausted now.
      return state.line.expire
    })
  )
}

/** Waits `delay` ms on the pool's clock, or less when a borrower in line hurries it (see `growForLine`). */
const backOff = (state: PoolState, delay: number): Effect.Effect<void> =>
  Effect.suspend(() => {
    // Registered at once, so that a borrower arriving before the race starts can hurry it.
    const hurried = Deferred.makeUnsafe<void>()
    const wake = () => Deferred.doneUnsafe(hurried, Exit.void)
    state.hurry.add(wake)
    return Effect.raceFirst(state.clock.sleep(Duration.millis(delay)), Deferred.await(hurried)).pipe(
      Effect.ensuring(
        Effect.sync(() => {
          state.hurry.delete(wake)
        })
      )
    )
  })

/** Openings under way now that no back-off holds. */
const openingNow = (state: PoolState): number => state.opening - state.hurry.size

/**
 * The adaptive limit of a new connection, when the pool's is `"auto"`. A connection whose server
 * requests can only be attributed to a call while it carries one call (stdio, SSE; see
 * docs/protocol.md) keeps one, so that adapting never sends a call's elicitation elsewhere.
 */
const limiterFor = (state: PoolState, connection: Connection.LiveConnection): Limiter | undefined => {
  const adaptive = state.limits.adaptive
  if (adaptive === undefined) return undefined
  const inexact = connection.attribution !== undefined && !connection.attribution.exact
  return new Limiter(inexact ? { min: 1, max: 1 } : adaptive, state.profile)
}

/** Whether the pool has no connection alive and one being opened: its borrowers wait for that. */
export const awaitingFirstOpen = (state: PoolState): boolean => alive(state) === 0 && openingNow(state) > 0

const memberOf = (
  state: PoolState,
  connection: Connection.LiveConnection,
  scope: Scope.Closeable,
  demand: boolean
): Member => {
  connection.openedOnDemand = demand
  state.counters.opened++
  state.lastConnectError = undefined
  state.latestInfo = {
    capabilities: connection.client.getServerCapabilities(),
    version: connection.client.getServerVersion()
  }
  const member: Member = {
    connection,
    active: 0,
    idleSince: state.clock.currentTimeMillisUnsafe(),
    removed: false,
    closed: false,
    // `closeNow` shares one close between its callers and waits for it, so a second caller
    // (the pool's shutdown while a retired connection closes) also waits for the process to end.
    close: Effect.uninterruptible(Effect.andThen(Connection.closeNow(connection), Scope.close(scope, Exit.void))),
    limiter: limiterFor(state, connection),
    passedOver: false
  }
  // A server request is a call's only while that call is the connection's one borrower.
  if (connection.attribution !== undefined) connection.attribution.holders = () => member.active
  return member
}

/** A failed open: counted and logged; the borrowers in line get its error when nothing else can serve them. */
const openFailed = (state: PoolState, error: MCPConnectionError): Effect.Effect<void> =>
  Effect.suspend(() => {
    state.counters.connectionErrors++
    state.lastConnectError = error
    state.streak++
    // No connection open and none coming: the borrowers in line would only wait for their
    // acquire timeout; they get the reason now.
    if (alive(state) === 0 && openingNow(state) === 0) state.line.failAll(error)
    keepMinimum(state)
    return Effect.logWarning(error.message)
  })

/** How the pool opens a connection: its limits, its session layer, and (for a member) its death. */
export const connectionOptions = (state: PoolState, member: boolean): Connection.MakeOptions => ({
  server: state.server,
  connectionTimeoutMs: state.limits.connectionTimeoutMs,
  shutdownGracePeriodMs: state.limits.shutdownGracePeriodMs,
  stderr: state.serverStderr,
  session: state.host === undefined ? undefined : state.hub.tap(state.host),
  ...(member
    ? { onDead: (connection: Connection.LiveConnection, reason: string) => died(state, connection, reason) }
    : {})
})

/** A connection died on its own (its process exited, its transport failed): out of the pool, counted once. */
const died = (state: PoolState, connection: Connection.LiveConnection, reason: string): void => {
  state.counters.connectionErrors++
  state.streak++
  // The server that replaces it may list other things.
  state.hub.connectionLost()
  state.background(
    Effect.logWarning(`connection #${connection.id} to "${state.serverName}" died: ${reason}`).pipe(
      Effect.annotateLogs({ server: state.serverName })
    )
  )
  const member = state.members.find((m) => m.connection === connection)
  if (member !== undefined) remove(state, member)
}

/**
 * Takes a member out of the pool: it is never lent again, and it is closed as soon as no
 * borrower holds it. The pool then opens what it needs to keep `minConnections`.
 */
export const remove = (state: PoolState, member: Member): void => {
  if (member.removed) return
  member.removed = true
  const index = state.members.indexOf(member)
  if (index !== -1) state.members.splice(index, 1)
  leftAnchor(state, member)
  if (member.active === 0) closeRemoved(state, member)
  keepMinimum(state)
  growForLine(state, 0)
}

/** The member that held the server's resource subscriptions left: whoever anchored them is told. */
const leftAnchor = (state: PoolState, member: Member): void => {
  const anchor = state.anchor
  if (anchor === undefined || anchor.member !== member) return
  state.anchor = undefined
  anchor.lost()
}

/** Counts the close of a member, once: false when it was counted already. */
const countClose = (state: PoolState, member: Member): boolean => {
  if (member.closed) return false
  member.closed = true
  state.counters.closed++
  const connection = member.connection
  state.telemetry.session((Date.now() - connection.createdAt) / 1000, !Connection.isAlive(connection))
  return true
}

/** Closes a removed member that no borrower holds, in the background (once). */
export const closeRemoved = (state: PoolState, member: Member): void => {
  if (countClose(state, member)) state.background(member.close)
  settleIfEmpty(state)
}

/**
 * Opens connections (after the back-off) until `minConnections` are open or opening, unless
 * the pool is not serving or its breaker is not closed: an open breaker means the server is
 * down, and while it is half-open its probe finds out (opening what it needs); the pool tops
 * itself up once a call succeeds again.
 */
export const keepMinimum = (state: PoolState): void => {
  if (state.phase !== "open") return
  if (state.breaker.stateUnsafe(state.clock.currentTimeMillisUnsafe()) !== "closed") return
  for (let missing = state.config.minConnections - (state.members.length + state.opening); missing > 0; missing--) {
    open(state, false)
  }
}

/**
 * Opens a connection for the borrowers in line (`joining` counts one about to join it) when
 * the connections being opened cannot serve them all: one waiting out a back-off opens at once,
 * else a new one if the pool may grow. A borrower never waits for a back-off.
 */
export const growForLine = (state: PoolState, joining: number): void => {
  if (state.phase !== "open") return
  const adaptive = state.limits.adaptive !== undefined
  if (adaptive && joining > 0) Growth.joining(state.growth, state.line.size, performance.now())
  const waiting = state.line.size + joining
  if (waiting <= openingNow(state) * (state.limits.adaptive?.min ?? state.limits.perConnection)) return
  // With adaptive limits, only when every connection is at a limit that no longer rises (see `Growth`).
  if (adaptive && !Growth.mayGrow(state)) return
  for (const wake of state.hurry) {
    state.hurry.delete(wake)
    wake()
    return
  }
  if (state.members.length + state.opening < state.config.maxConnections) open(state, true)
}

/**
 * As a request of an adaptive pool ends while borrowers wait: asks again whether the pool may
 * grow for them, at most every `Growth.LOOK_AGAIN_MS` (see `Growth.lookAgain`).
 */
export const growForWaiting = (state: PoolState, now: number): void => {
  if (state.line.size > 0 && Growth.lookAgain(state.growth, now)) growForLine(state, 0)
}

/**
 * Retires the connections idle for `maxIdleTime` beyond `minConnections`, longest idle first,
 * then sleeps on the pool's clock until the next one could expire; forever, while the pool serves.
 */
export const retireIdle = (state: PoolState): Effect.Effect<void> =>
  Effect.suspend(() => {
    if (state.phase !== "open") return Effect.void
    const now = state.clock.currentTimeMillisUnsafe()
    const ttl = state.limits.maxIdleMs
    let next = now + ttl
    let excess = state.members.length - state.config.minConnections
    // The anchor of the resource subscriptions is kept, idle or not.
    const idle = state.members
      .filter((m) => m.active === 0 && m !== state.anchor?.member)
      .toSorted((a, b) => a.idleSince - b.idleSince)
    for (const member of idle) {
      if (excess <= 0) break
      if (now - member.idleSince >= ttl) {
        remove(state, member)
        excess--
      } else {
        next = Math.min(next, member.idleSince + ttl)
      }
    }
    return Effect.andThen(state.clock.sleep(Duration.millis(Math.max(1, next - now))), retireIdle(state))
  })

/**
 * Closes every connection of the pool now, in parallel, whoever holds them (their calls end);
 * waits until every process has ended.
 */
export const closeAll = (state: PoolState): Effect.Effect<void> =>
  Effect.suspend(() => {
    const members = state.members.splice(0)
    for (const member of members) {
      member.removed = true
      leftAnchor(state, member)
      countClose(state, member)
    }
    // A member already closing is awaited too: its close is shared (see `memberOf`).
    return Effect.forEach(members, (member) => member.close, { concurrency: "unbounded", discard: true })
  })
