/**
 * The shared state of one pool: its members (open connections), the line of borrowers, its
 * counters and its phase. Every other module of `pool/` is functions over this record.
 */
import type { Client } from "@modelcontextprotocol/sdk/client/index.js"
import type { RequestOptions } from "@modelcontextprotocol/sdk/shared/protocol.js"
import type * as Clock from "effect/Clock"
import type * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import type * as Scope from "effect/Scope"
import type * as Alerts from "../Alerts.js"
import type { Breaker } from "../internal/circuitBreaker.js"
import type * as Connection from "../Connection.js"
import type { ServerStderr } from "../Connection.js"
import type { LiveConnection } from "../internal/connection.js"
import type { MCPCallError, MCPConnectionError, MCPManagerClosed, MCPPoolExhausted } from "../Errors.js"
import type * as Telemetry from "../internal/telemetry.js"
import type { WaitQueue } from "../internal/waitQueue.js"
import type * as SlidingWindow from "../internal/window.js"
import type { PoolConfig } from "../PoolConfig.js"
import type * as ServerConfig from "../ServerConfig.js"
import type * as ServerRequests from "../ServerRequests.js"
import type { Growth } from "./Growth.js"
import type { Limiter, LimiterOptions } from "./Limiter.js"
import type { ServerProfile } from "./ServerProfile.js"
import type { Hub } from "../session/Hub.js"
import type { PoolHost } from "../session/PoolHost.js"

/**
 * Describes one request for counting, timeouts and the retry decision.
 *
 * @since 0.1.0
 * @category models
 */
export interface RequestInfo {
  /** The MCP method, e.g. `tools/call`. */
  readonly method: string
  /** Whether running the request twice is harmless. Reads are; a tool call is not unless the caller says so. */
  readonly idempotent: boolean
  /** What the request is about, for its span name and metrics: the tool, prompt or resource URI. */
  readonly target?: string | undefined
  /** The caller's own abort signal: when it aborts, the call ends with `MCPAborted`. */
  readonly signal?: AbortSignal | undefined
  /** The caller's handlers for what the server asks while serving this call. */
  readonly handlers?: ServerRequests.Handlers | undefined
  /** The caller's own request timeout (ms), when it gave one: a handler answering for the call gets as long. */
  readonly timeoutMs?: number | undefined
}

/**
 * The request options the pool hands to the SDK: its abort signal and timeout.
 *
 * @since 0.1.0
 * @category models
 */
export type SdkRequestOptions = RequestOptions

/**
 * The W3C trace context (`traceparent`, and `tracestate`, `baggage` when known) to merge
 * into the request's `params._meta`; `undefined` when there is none to send.
 *
 * @since 0.1.0
 * @category models
 */
export type TraceMeta = Readonly<Record<string, string>> | undefined

/**
 * Sends one request on a lent client: the pool passes its request options and the trace
 * context to put in `params._meta`.
 *
 * @since 0.1.0
 * @category models
 */
export type Run<A> = (client: Client, options: SdkRequestOptions, meta: TraceMeta) => Promise<A>

/** The errors of borrowing a connection outside a request (`withConnection`, `lease`). */
export type BorrowError = MCPConnectionError | MCPPoolExhausted | MCPManagerClosed

/** The pool that replaced a draining one: what it forwards to. */
export interface Successor {
  readonly request: <A>(info: RequestInfo, run: Run<A>) => Effect.Effect<A, MCPCallError>
  readonly withConnection: <A, E, R>(
    use: (connection: Connection.Connection) => Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | BorrowError, R>
  readonly lease: Effect.Effect<Connection.Connection, BorrowError, Scope.Scope>
}

/**
 * Counters of a pool since it started.
 *
 * @since 0.1.0
 * @category models
 */
export interface Counters {
  /** Acquisitions served by a connection that already existed. */
  hits: number
  /** Acquisitions served by a connection opened for them. */
  misses: number
  /** Calls made through the pool. */
  requests: number
  /** Calls that ended in an error of the server or the connection (after retries and fallback). */
  errors: number
  /** Connection-level failures: failed connects, dead transports, exited processes. */
  connectionErrors: number
  /** Calls that exceeded `requestTimeout`. */
  timeouts: number
  /** Borrowers that found no connection within `acquireTimeout`. */
  exhausted: number
  /** Attempts repeated after a safe failure. */
  retries: number
  /** Calls served by a one-off direct connection (`fallback: "direct"`). */
  fallbacks: number
  /** Calls refused at once because the circuit breaker was open. */
  rejected: number
  /** Calls ended by the caller (abort signal) or by the pool's own close: never the server's fault. */
  abandoned: number
  /** Connections opened, and closed, since the start. */
  opened: number
  closed: number
  /** Health checks run, and connections that failed one. */
  healthChecks: number
  healthCheckFailures: number
}

/** Counters all at zero. */
export const zeroCounters = (): Counters => ({
  hits: 0,
  misses: 0,
  requests: 0,
  errors: 0,
  connectionErrors: 0,
  timeouts: 0,
  exhausted: 0,
  retries: 0,
  fallbacks: 0,
  rejected: 0,
  abandoned: 0,
  opened: 0,
  closed: 0,
  healthChecks: 0,
  healthCheckFailures: 0
})

/**
 * One open connection of the pool and what the pool knows of its use.
 */
export interface Member {
  readonly connection: LiveConnection
  /** Leases held now: requests in flight, plus `withConnection` and `lease` holders. */
  active: number
  /** Clock time (ms) at which `active` last dropped to 0, or the member opened. */
  idleSince: number
  /** Taken out of the pool (dead, retired or closing): never lent again. */
  removed: boolean
  /** Its close has started (and been counted): it happens once. */
  closed: boolean
  /** Closes the connection (and its process); runs once, whoever calls it. */
  readonly close: Effect.Effect<void>
  /** Its adaptive limit (`"auto"`); absent when the limit is fixed. */
  readonly limiter: Limiter | undefined
  /**
   * A borrower went to a newer connection because this one was full, since its last request
   * ended: as much a call for a higher limit as a line of borrowers (see `Admission.pick`).
   */
  passedOver: boolean
}

/**
 * Where a pool is in its life: serving; draining (replaced by another pool, finishing what it
 * serves and forwarding the rest); closed (everything refused with `MCPManagerClosed`).
 */
export type Phase = "open" | "draining" | "closed"

/**
 * Who holds a lease: the connection lent to it (until it is released), and whether it was a
 * connection that already existed (a pool hit). A request's ticket is its call record.
 */
export interface Ticket {
  member: Member | undefined
  reused: boolean
}

/** Why a borrower in line stopped waiting without a connection. */
export type LineFailure = MCPPoolExhausted | MCPConnectionError | MCPManagerClosed | Forwarded

/**
 * A borrower of a draining pool: its call goes to the pool that replaced it. Never leaves the
 * pool's modules.
 */
export class Forwarded {
  readonly _tag = "Forwarded"
}

/** The server's capabilities and version, from the latest handshake. */
export interface ServerInfo {
  readonly capabilities: ReturnType<Client["getServerCapabilities"]>
  readonly version: ReturnType<Client["getServerVersion"]>
}

/** Times of the pool's settings, in milliseconds, computed once. */
export interface Limits {
  /** Requests (leases) one connection carries at once when fixed; the upper bound when adaptive. */
  readonly perConnection: number
  /** The bounds of each connection's adaptive limit; absent when the limit is fixed. */
  readonly adaptive: LimiterOptions | undefined
  readonly connectionTimeoutMs: number
  readonly acquireTimeoutMs: number
  readonly requestTimeoutMs: number
  readonly aliveBypassMs: number
  readonly maxIdleMs: number
  readonly retryDelayMs: number
  readonly recoveryTimeoutMs: number
  readonly shutdownGracePeriodMs: number
  /** How long a listed catalog stays fresh; 0: until invalidated. */
  readonly catalogTtlMs: number
}

/**
 * The most requests ever put in flight on one SDK client at once, whatever
 * `maxConcurrentRequestsPerConnection` says; the rest wait in the pool.
 */
export const MAX_IN_FLIGHT_PER_CONNECTION = 256

/** Seconds (as configured) in milliseconds. */
export const millis = (seconds: number): number => Math.round(seconds * 1000)

/** The limits of a configuration. */
export const limitsOf = (config: PoolConfig): Limits => ({
  perConnection: Math.min(
    config.maxConcurrentRequestsPerConnection === "auto"
      ? config.autoConcurrencyMax
      : config.maxConcurrentRequestsPerConnection,
    MAX_IN_FLIGHT_PER_CONNECTION
  ),
  adaptive:
    config.maxConcurrentRequestsPerConnection === "auto"
      ? {
          min: Math.min(config.autoConcurrencyMin, MAX_IN_FLIGHT_PER_CONNECTION),
          max: Math.min(config.autoConcurrencyMax, MAX_IN_FLIGHT_PER_CONNECTION)
        }
      : undefined,
  connectionTimeoutMs: millis(config.connectionTimeout),
  acquireTimeoutMs: millis(config.acquireTimeout),
  requestTimeoutMs: millis(config.requestTimeout),
  aliveBypassMs: millis(config.aliveBypassWindow),
  maxIdleMs: millis(config.maxIdleTime),
  retryDelayMs: millis(config.retryDelay),
  recoveryTimeoutMs: millis(config.circuitBreakerRecoveryTimeout),
  shutdownGracePeriodMs: millis(config.shutdownGracePeriod),
  catalogTtlMs: millis(config.catalogTtl)
})

/**
 * The state of one pool. Mutable on purpose: it is read and written synchronously on the hot
 * path, and only by the functions of `pool/`.
 */
export interface PoolState {
  readonly serverName: string
  readonly server: ServerConfig.ServerConfig
  readonly config: PoolConfig
  readonly limits: Limits
  /** The SDK options of a request that carries no signal: one shared object, which the SDK only reads. */
  readonly requestOptions: SdkRequestOptions
  readonly clock: Clock.Clock
  /** The pool's scope: its background fibers and its connections end with it. */
  readonly scope: Scope.Scope
  /** Forks background work (opening, closing, logging) into the pool's scope, from anywhere. */
  readonly background: <A, E>(effect: Effect.Effect<A, E>) => Fiber.Fiber<A, E>
  readonly telemetry: Telemetry.PoolTelemetry
  /** What becomes of a stdio server's stderr. */
  readonly serverStderr: ServerStderr
  /** Removes the server's secrets from a text (see `ServerConfig.scrubber`): for every reason the pool quotes. */
  readonly scrub: (text: string) => string
  readonly alerts: Alerts.Alerts | undefined
  readonly thresholds: Alerts.Thresholds
  readonly breaker: Breaker
  readonly counters: Counters
  /** Calls and failures of the alert window. */
  readonly window: SlidingWindow.SlidingWindow
  /** Open connections, oldest first. The oldest are lent first, so the newest idle out. */
  readonly members: Array<Member>
  /** Connections being opened now, those waiting out a back-off included. */
  opening: number
  /** Wakes the openings that wait out a back-off: a borrower in line needs one now. */
  readonly hurry: Set<() => void>
  /** Borrowers waiting for a connection. */
  readonly line: WaitQueue<Ticket, LineFailure>
  phase: Phase
  /** Consecutive failures to open a connection that stays up; spaces out the pool's own re-opening. */
  streak: number
  /** What the adaptive limits of the pool's connections learnt of its server (see `Limiter`). */
  readonly profile: ServerProfile
  /** What an adaptive pool remembers of its growth (see `Growth`). */
  readonly growth: Growth
  lastConnectError: MCPConnectionError | undefined
  /** Clock time (ms) of the last failed health check, if any. */
  lastHealthCheckFailureAt: number | undefined
  /** Health-check pings waiting for an answer now. */
  pingsInFlight: number
  /** Clock time (ms) of the last failed call. */
  lastFailureAt: number
  /** Alert conditions as last told to `Alerts` (so that a call tells it only of changes). */
  exhaustionActive: boolean
  errorRateActive: boolean
  latestInfo: ServerInfo
  /** The pool a draining pool forwards new calls to. */
  successor: Successor | undefined
  /** Gives a connection just opened to the borrowers in line, or keeps it idle. */
  adopt: (member: Member) => void
  /** Called once the pool has nothing left to serve (draining) or has closed. */
  onEmpty: (() => void) | undefined
  /** The server's session layer: handlers, catalog, subscriptions (shared with the pools that follow). */
  readonly hub: Hub
  /** What the session layer may ask of this pool. */
  host: PoolHost | undefined
  /** The connection the server's resource subscriptions live on, and who to tell when it leaves. */
  anchor: { readonly member: Member; readonly lost: () => void } | undefined
}

/** The requests (leases) a member carries at once now: its adaptive limit, or the fixed one. */
export const limitOf = (state: PoolState, member: Member): number =>
  member.limiter === undefined ? state.limits.perConnection : member.limiter.limit

/** Whether a member can take one more lease. */
export const hasRoom = (state: PoolState, member: Member): boolean =>
  member.active < limitOf(state, member) && member.connection.deadReason === undefined && !member.removed

/** Members with at least one lease. */
export const inUse = (state: PoolState): number => {
  let n = 0
  for (const member of state.members) if (member.active > 0) n++
  return n
}

/** Members that are alive (not known dead). */
export const alive = (state: PoolState): number => {
  let n = 0
  for (const member of state.members) if (member.connection.deadReason === undefined) n++
  return n
}
