/**
 * A point-in-time view of a pool: its connections, counters and breaker, and the reading its
 * judgement is made from.
 */
import type * as CircuitBreaker from "../CircuitBreaker.js"
import * as Connection from "../internal/connection.js"
import type { CatalogLookups } from "../session/Catalog.js"
import * as Judgement from "./Judgement.js"
import { alive, type Counters, inUse, limitOf, type Member, type PoolState } from "./State.js"

/**
 * What the pool reports of one connection.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConnectionInfo {
  readonly id: number
  readonly pid: number | undefined
  readonly sessionId: string | undefined
  readonly inFlight: number
  readonly leases: number
  readonly createdAt: number
  readonly lastUsedAt: number
  readonly alive: boolean
  /**
   * The requests it may carry at once now: its adaptive limit (`"auto"`), else the fixed
   * `maxConcurrentRequestsPerConnection`.
   */
  readonly concurrencyLimit: number
}

/**
 * A point-in-time view of a pool.
 *
 * @since 0.1.0
 * @category models
 */
export interface Snapshot {
  readonly serverName: string
  readonly totalConnections: number
  readonly availableConnections: number
  readonly inUseConnections: number
  /** Connections being opened now. */
  readonly openingConnections: number
  /** Borrowers waiting in line for a connection. */
  readonly pendingRequests: number
  readonly counters: Readonly<Counters>
  /** In-use connections divided by `maxConnections`. */
  readonly utilization: number
  readonly connections: ReadonlyArray<ConnectionInfo>
  /** The circuit breaker's state when the snapshot was taken. */
  readonly circuitBreakerState: CircuitBreaker.State
  /** Calls and failed calls in the alert window (`errorRateWindow`, default 60 s). */
  readonly window: { readonly requests: number; readonly errors: number }
  /** Clock time (epoch ms) of the last failed health check, if any. */
  readonly lastHealthCheckFailureAt: number | undefined
  /** Whether the latest attempt to open a connection failed. */
  readonly lastConnectFailed: boolean
  /** Health-check pings waiting for an answer now. */
  readonly pingsInFlight: number
  /** The pool's status and why, by the one judgement of `Judgement`. */
  readonly judgement: Judgement.Judgement
  /**
   * The list calls the server's catalog answered since it started (shared with the pools that
   * replaced one another): from the catalog (`hit`), by reading the server (`fill`), or by
   * waiting for a read another call started (`shared`).
   */
  readonly catalogLookups: Readonly<CatalogLookups>
  /** Clock time (epoch ms) of the snapshot. */
  readonly takenAt: number
}

/** What the judgement reads of the pool now. */
export const reading = (state: PoolState, now: number): Judgement.Reading => ({
  inUse: inUse(state),
  waiting: state.line.size,
  alive: alive(state),
  minConnections: state.config.minConnections,
  maxConnections: state.config.maxConnections,
  lastConnectFailed: state.lastConnectError !== undefined,
  breakerState: state.breaker.stateUnsafe(now),
  window: state.window.totals(now),
  lastHealthCheckFailureAt: state.lastHealthCheckFailureAt,
  healthCheckIntervalMs: state.config.healthCheckInterval * 1000,
  exhaustionHeld: state.exhaustionActive,
  now
})

const connectionInfo = (state: PoolState, member: Member): ConnectionInfo => {
  const connection = member.connection
  return {
    id: connection.id,
    pid: connection.pid,
    sessionId: connection.sessionId,
    inFlight: connection.inFlight,
    leases: connection.leases,
    createdAt: connection.createdAt,
    lastUsedAt: connection.lastUsedAt,
    alive: Connection.isAlive(connection),
    concurrencyLimit: limitOf(state, member)
  }
}

/** The mean of the connections' limits now (0 without a connection). */
export const meanLimit = (state: PoolState): number => {
  if (state.members.length === 0) return 0
  let sum = 0
  for (const member of state.members) sum += limitOf(state, member)
  return sum / state.members.length
}

/** Takes a snapshot of the pool. */
export const snapshot = (state: PoolState): Snapshot => {
  const now = state.clock.currentTimeMillisUnsafe()
  const read = reading(state, now)
  let available = 0
  for (const member of state.members) if (member.active === 0 && Connection.isAlive(member.connection)) available++
  return {
    serverName: state.serverName,
    totalConnections: state.members.length,
    availableConnections: available,
    inUseConnections: read.inUse,
    openingConnections: state.opening,
    pendingRequests: read.waiting,
    counters: { ...state.counters },
    utilization: Judgement.utilization(read.inUse, state.config.maxConnections),
    connections: state.members.map((member) => connectionInfo(state, member)),
    circuitBreakerState: read.breakerState,
    window: read.window,
    lastHealthCheckFailureAt: state.lastHealthCheckFailureAt,
    lastConnectFailed: read.lastConnectFailed,
    pingsInFlight: state.pingsInFlight,
    judgement: Judgement.judge(read, state.thresholds),
    catalogLookups: { ...state.hub.catalog.lookups },
    takenAt: now
  }
}
