/**
 * Who gets which connection, by one rule for requests, `withConnection` and `lease`: a
 * connection with room at once, else a place in the line, served first come first served.
 */
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import type * as Scope from "effect/Scope"
import * as Connection from "../internal/connection.js"
import { MCPConnectionError, MCPManagerClosed, MCPPoolExhausted } from "../Errors.js"
import * as Telemetry from "../internal/telemetry.js"
import { exhaustionChange, observeExhaustion } from "./Alerting.js"
import { closeRemoved, growForLine, remove } from "./Members.js"
import { probe } from "./Probe.js"
import { Forwarded, hasRoom, inUse, type LineFailure, type Member, type PoolState, type Ticket } from "./State.js"

/** A connection found dead or unresponsive when it was about to be lent: borrow another. */
class Stale {
  readonly _tag = "Stale"
}

const isStale = (error: unknown): error is Stale => error instanceof Stale

const forwarded = new Forwarded()

/** The error of a borrower of a closed pool. */
export const closed = (state: PoolState, operation: string): MCPManagerClosed =>
  new MCPManagerClosed({ serverName: state.serverName, operation })

/** The error of a borrower that waited `acquireTimeout` in vain; counted. */
export const exhaustedError = (state: PoolState): MCPPoolExhausted => {
  state.counters.exhausted++
  return new MCPPoolExhausted({
    serverName: state.serverName,
    acquireTimeoutMs: state.limits.acquireTimeoutMs,
    maxConnections: state.config.maxConnections,
    inUse: inUse(state),
    opening: state.opening
  })
}

/** Lends `member` to `ticket`: one more lease, counted as a hit or a miss. */
const lend = (state: PoolState, member: Member, ticket: Ticket): void => {
  member.active++
  const connection = member.connection
  connection.leases++
  const miss = connection.leases === 1 && connection.openedOnDemand
  if (miss) state.counters.misses++
  else state.counters.hits++
  ticket.member = member
  ticket.reused = !miss
}

/** Hands a member with room to the borrowers in line, as many as it has room for. */
export const offer = (state: PoolState, member: Member): void => {
  while (state.line.size > 0 && hasRoom(state, member)) {
    state.line.handOff((ticket) => lend(state, member, ticket))
  }
  if (member.active === 0) member.idleSince = state.clock.currentTimeMillisUnsafe()
}

/**
 * Ends the lease a ticket holds, if any (idempotent): the connection goes to the next borrower
 * in line, or is closed when it was taken out of the pool, died, or its pool drains.
 */
export const release = (state: PoolState, ticket: Ticket): void => {
  const member = ticket.member
  if (member === undefined) return
  ticket.member = undefined
  member.active--
  if (member.removed) {
    if (member.active === 0) closeRemoved(state, member)
    return
  }
  if (member.connection.deadReason !== undefined || (state.phase !== "open" && member.active === 0)) {
    remove(state, member)
    return
  }
  offer(state, member)
}

/**
 * The oldest connection with room: the newest ones then idle out first, and with adaptive
 * limits a connection is filled to its limit (and may raise it) before the next one is used: one
 * passed over because it was full is asked for a higher limit, as by a line of borrowers.
 * While requests queue in the processes because the cores are busy (see `ServerProfile.coresBusy`),
 * the connection with the fewest requests instead: each process is one more core's worth only
 * if it gets its share.
 */
const pick = (state: PoolState): Member | undefined => {
  if (state.profile.coresBusy) return leastBusy(state)
  for (const member of state.members) {
    if (hasRoom(state, member)) return member
    member.passedOver = true
  }
  return undefined
}

const leastBusy = (state: PoolState): Member | undefined => {
  let least: Member | undefined
  for (const member of state.members) {
    if (hasRoom(state, member) && (least === undefined || member.active < least.active)) least = member
  }
  return least
}

/** Whether a live connection may be used without a ping first: busy, or used within `aliveBypassWindow`. */
export const isReady = (state: PoolState, member: Member): boolean => {
  const connection = member.connection
  return (
    Connection.isAlive(connection) &&
    (connection.inFlight > 0 || Date.now() - connection.lastUsedAt <= state.limits.aliveBypassMs)
  )
}

/** Gives up a connection just lent that proved dead: it leaves the pool; the borrower tries another. */
const giveUp = (state: PoolState, ticket: Ticket): Effect.Effect<never, Stale> =>
  Effect.suspend(() => {
    release(state, ticket)
    return Effect.fail(new Stale())
  })

/**
 * Whether a connection just lent is fit to use: `undefined` when it can be used at once (the
 * common case, kept free of effects), else the effect that pings it first (idle longer than
 * `aliveBypassWindow`) or gives it up (known dead).
 */
const check = (state: PoolState, ticket: Ticket, member: Member): Effect.Effect<void, Stale> | undefined => {
  const connection = member.connection
  if (!Connection.isAlive(connection)) return giveUp(state, ticket)
  if (isReady(state, member)) return undefined
  return Effect.flatMap(probe(connection, state.limits.connectionTimeoutMs, state.scrub), (probed) => {
    if (probed.alive) {
      connection.lastUsedAt = Date.now()
      return Effect.void
    }
    if (Connection.isAlive(connection)) state.counters.connectionErrors++
    Connection.markDead(connection, `${probed.reason} before being lent`)
    return giveUp(state, ticket)
  })
}

/** Runs `use` on a connection just lent, after its check. */
const lent = <A, E, R>(
  state: PoolState,
  ticket: Ticket,
  member: Member,
  use: (member: Member) => Effect.Effect<A, E, R>
): Effect.Effect<A, E | Stale, R> => {
  const checked = check(state, ticket, member)
  return checked === undefined
    ? use(member)
    : Effect.andThen(
        checked,
        Effect.suspend(() => use(member))
      )
}

/**
 * For a caller without a fiber: lends a connection with room at once when nobody waits
 * (answers it), else answers `undefined`.
 */
export const lendAtOnce = (state: PoolState, ticket: Ticket): Member | undefined => {
  if (state.line.size > 0) return undefined
  const member = pick(state)
  if (member !== undefined) lend(state, member, ticket)
  return member
}

/**
 * For a caller without a fiber: a place in line (which may grow the pool). `resume` gets
 * `Exit.void` once `ticket` holds a connection, else the line's failure. Answers the alert to
 * tell when this borrower made the pool exhausted.
 */
export const joinLine = (
  state: PoolState,
  ticket: Ticket,
  resume: (exit: Exit.Exit<void, LineFailure>) => void
): Effect.Effect<void> | undefined => {
  growForLine(state, 1)
  const deadline = state.clock.currentTimeMillisUnsafe() + state.limits.acquireTimeoutMs
  const alert = exhaustionChange(state, 1)
  state.line.join(deadline, ticket, resume)
  return alert
}

/**
 * Goes on with a connection lent to a caller without a fiber that is not ready (see
 * `isReady`): checked as `borrow` checks it, another borrowed when it proves dead.
 */
export const useLent = <A, E, R>(
  state: PoolState,
  ticket: Ticket,
  member: Member,
  use: (member: Member) => Effect.Effect<A, E, R>,
  call: Telemetry.Call
): Effect.Effect<A, E | LineFailure | MCPConnectionError, R> =>
  Effect.catchIf(lent(state, ticket, member, use), isStale, () =>
    Effect.suspend(() => borrow(state, ticket, use, call))
  )

/** Waits in line for a connection (which may grow the pool), then uses it. */
const inLine = <A, E, R>(
  state: PoolState,
  ticket: Ticket,
  use: (member: Member) => Effect.Effect<A, E, R>,
  call: Telemetry.Call | undefined
): Effect.Effect<A, E | Stale | LineFailure, R> => {
  growForLine(state, 1)
  const deadline = state.clock.currentTimeMillisUnsafe() + state.limits.acquireTimeoutMs
  const waited = Effect.flatMap(state.line.wait(deadline, ticket), () => {
    const member = ticket.member
    return member === undefined
      ? Effect.die("a borrower was woken without a connection")
      : lent(state, ticket, member, use)
  })
  const observed = Effect.andThen(observeExhaustion(state, 1), waited)
  // Only a borrower that has to wait gets an `mcp_pool.acquire` span.
  return call?.span === undefined ? observed : Telemetry.withAcquireSpan(call, observed)
}

/** One try at a connection, decided now: lent at once when one has room and nobody waits, else a wait. */
const tryOnce = <A, E, R>(
  state: PoolState,
  ticket: Ticket,
  use: (member: Member) => Effect.Effect<A, E, R>,
  call: Telemetry.Call | undefined
): Effect.Effect<A, E | Stale | LineFailure, R> => {
  if (state.phase !== "open") {
    // A pool that was replaced forwards, also after it closed: a call that waited to retry
    // meanwhile goes to its successor.
    return Effect.fail(
      state.successor === undefined ? closed(state, call?.method ?? "borrowing a connection") : forwarded
    )
  }
  if (state.line.size === 0) {
    const member = pick(state)
    if (member !== undefined) {
      lend(state, member, ticket)
      return lent(state, ticket, member, use)
    }
  }
  return inLine(state, ticket, use, call)
}

/**
 * Borrows a connection for `ticket` and runs `use` on it, trying another (up to one more time
 * than there are connections) when the one lent is found dead. The lease stays on the ticket
 * until `release`: the caller must release it whatever happens (an `onExit` around the whole,
 * installed before this runs). Decides the first try now: call it when the borrow is to run.
 */
export const borrow = <A, E, R>(
  state: PoolState,
  ticket: Ticket,
  use: (member: Member) => Effect.Effect<A, E, R>,
  call?: Telemetry.Call
): Effect.Effect<A, E | LineFailure | MCPConnectionError, R> => {
  const maxSkips = state.config.maxConnections + 1
  const loop = (skips: number): Effect.Effect<A, E | LineFailure | MCPConnectionError, R> =>
    Effect.catchIf(
      skips === 0 ? tryOnce(state, ticket, use, call) : Effect.suspend(() => tryOnce(state, ticket, use, call)),
      isStale,
      () =>
        skips < maxSkips
          ? loop(skips + 1)
          : Effect.fail(
              new MCPConnectionError({
                serverName: state.serverName,
                reason: `no live connection: ${skips + 1} connections in a row were found dead`,
                requestSent: false
              })
            )
    )
  return loop(0)
}

const newTicket = (): Ticket => ({ member: undefined, reused: false })

/** Lends one connection for the whole of `use`, timed as a lease; released when `use` ends. */
export const withConnection = <A, E, R>(
  state: PoolState,
  use: (connection: Connection.LiveConnection) => Effect.Effect<A, E, R>
): Effect.Effect<A, E | LineFailure | MCPConnectionError, R> =>
  Telemetry.timedLease(state.telemetry, (timed) => {
    const ticket = newTicket()
    return Effect.onExit(
      Effect.suspend(() => borrow(state, ticket, (member) => timed(member.connection.id, use(member.connection)))),
      () => Effect.sync(() => release(state, ticket))
    )
  })

/** Lends one connection until the scope closes, timed as a lease. */
export const lease = (
  state: PoolState
): Effect.Effect<Connection.LiveConnection, LineFailure | MCPConnectionError, Scope.Scope> =>
  Telemetry.timedScopedLease(
    state.telemetry,
    Effect.suspend(() => {
      const ticket = newTicket()
      // Installed before the borrow, so that an interruption at any point releases the lease.
      return Effect.andThen(
        Effect.addFinalizer(() => Effect.sync(() => release(state, ticket))),
        borrow(state, ticket, (member) => Effect.succeed(member.connection))
      )
    }),
    (connection) => connection.id
  )
