/**
 * A pool of live connections to one MCP server: min/max size, idle expiry, per-connection
 * concurrency, acquire and request timeouts, safe retries, fallback, drain and close.
 *
 * @since 0.1.0
 */
import type { Client } from "@modelcontextprotocol/sdk/client/index.js"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as FiberSet from "effect/FiberSet"
import * as Scope from "effect/Scope"
import * as Alerts from "./Alerts.js"
import type * as CircuitBreaker from "./CircuitBreaker.js"
import type * as Connection from "./Connection.js"
import type { MCPCallError } from "./Errors.js"
import * as Telemetry from "./internal/telemetry.js"
import { WaitQueue } from "./internal/waitQueue.js"
import * as SlidingWindow from "./internal/window.js"
import * as Admission from "./pool/Admission.js"
import * as Health from "./pool/Health.js"
import { host } from "./pool/Host.js"
import * as Members from "./pool/Members.js"
import { makeBreaker } from "./pool/Policy.js"
import * as RequestPath from "./pool/Request.js"
import * as RequestNow from "./pool/RequestNow.js"
import type { PromiseCaller } from "./pool/RequestNow.js"
import * as Snapshots from "./pool/Snapshot.js"
import {
  type BorrowError,
  type Counters,
  Forwarded,
  limitsOf,
  type LineFailure,
  type PoolState,
  type RequestInfo,
  type Run,
  type ServerInfo,
  type Ticket,
  zeroCounters
} from "./pool/State.js"
import type { PoolConfig } from "./PoolConfig.js"
import * as ServerConfig from "./ServerConfig.js"
import type * as ServerRequests from "./ServerRequests.js"
import type { ListKind } from "./session/Catalog.js"
import * as Hub from "./session/Hub.js"
import * as Growth from "./pool/Growth.js"
import * as Load from "./pool/Load.js"
import { ServerProfile } from "./pool/ServerProfile.js"

import type { HealthCheckResult } from "./pool/Health.js"
import type { Snapshot } from "./pool/Snapshot.js"

export type { HealthCheckResult } from "./pool/Health.js"
export type { Judgement, Status } from "./pool/Judgement.js"
export { Uninterruptible } from "./pool/Request.js"
export type { PromiseCaller, RunEffect } from "./pool/RequestNow.js"
export type { Tracing } from "./internal/telemetry.js"
export type { ConnectionInfo, Snapshot } from "./pool/Snapshot.js"
export type { CatalogLookups, ListKind } from "./session/Catalog.js"
export type { ServerSession } from "./session/Hub.js"
export {
  type BorrowError,
  type Counters,
  type RequestInfo,
  type Run,
  type SdkRequestOptions,
  type ServerInfo,
  type TraceMeta
} from "./pool/State.js"

/**
 * A pool of connections to one server.
 *
 * @since 0.1.0
 * @category models
 */
export interface MCPConnectionPool {
  readonly serverName: string
  readonly server: ServerConfig.ServerConfig
  readonly config: PoolConfig
  /**
   * Runs one MCP request on a borrowed connection: acquire timeout, request timeout, safe
   * retries on the pool's schedule, counting, and fallback.
   */
  readonly request: <A>(info: RequestInfo, run: Run<A>) => Effect.Effect<A, MCPCallError>
  /**
   * `request` for a caller without a fiber (the Promise API): the same request, whose common
   * case costs no fiber. `undefined` when the request must go through `request` instead (the
   * pool is not open, or `info` has a signal). `caller.runEffect` runs what goes on along the
   * Effect path (a retry, the fallback, an alert); `caller.tracing` makes its spans.
   */
  readonly requestNow: <A>(info: RequestInfo, run: Run<A>, caller: PromiseCaller) => Promise<A> | undefined
  /** Lends one connection for the whole of `f` (no retry, no request timeout). */
  readonly withConnection: <A, E, R>(
    f: (connection: Connection.Connection) => Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | BorrowError, R>
  /** Lends one connection until the scope closes. */
  readonly lease: Effect.Effect<Connection.Connection, BorrowError, Scope.Scope>
  /** Takes a connection out of the pool; it is closed once its borrowers return it. */
  readonly invalidate: (connection: Connection.Connection) => Effect.Effect<void>
  /** Waits until the connections opened at the start (`minConnections`) are open or failed to open. */
  readonly warmUp: Effect.Effect<void>
  readonly snapshot: () => Snapshot
  /** The live counters (read-only for callers). */
  readonly counters: Readonly<Counters>
  /** Every connection open now. */
  readonly connections: () => ReadonlyArray<Connection.Connection>
  /** The pool's circuit breaker. */
  readonly breaker: CircuitBreaker.CircuitBreaker
  /**
   * Runs one health check now (see `MCPHealthMonitor`). `onDemand`: a pool with no idle
   * connection probes a busy one or opens one, so the answer always finds out.
   */
  readonly checkHealth: (options?: { readonly onDemand?: boolean | undefined }) => Effect.Effect<HealthCheckResult>
  /**
   * Hands the pool over to `successor`: new calls and the borrowers in line go to it at once;
   * calls in flight finish here (each up to its own timeout). Succeeds once nothing is left
   * in flight and every connection of this pool has closed.
   */
  readonly drain: (successor: MCPConnectionPool) => Effect.Effect<void>
  /** The server's capabilities and version, from the latest handshake. */
  readonly serverInfo: () => ServerInfo
  /**
   * A list of the server's catalog: the one kept for the server while it is fresh, else what
   * `fill` answers (one fill at a time; callers that come meanwhile wait for it). With
   * `catalog: "off"`, always `fill`.
   */
  readonly catalogList: <A>(kind: ListKind, fill: Effect.Effect<A, MCPCallError>) => Effect.Effect<A, MCPCallError>
  /** Gives a client the output schemas of the catalog's tools before it calls one (see docs/protocol.md). */
  readonly primeClient: (client: Client) => void
  /** The server's session, shared with the pools that replace this one. */
  readonly session: Hub.ServerSession
}

const isForwarded = (error: unknown): error is Forwarded => error instanceof Forwarded

/** The pool's part of a borrow that never left it: a forwarded borrower goes to the successor. */
const orForward = <A, E, R>(
  state: PoolState,
  effect: Effect.Effect<A, E | LineFailure, R>,
  forward: (successor: NonNullable<PoolState["successor"]>) => Effect.Effect<A, E | BorrowError, R>,
  operation: string
): Effect.Effect<A, E | BorrowError, R> =>
  Effect.catchIf(effect, isForwarded, () =>
    state.successor === undefined ? Effect.fail(Admission.closed(state, operation)) : forward(state.successor)
  ) as Effect.Effect<A, E | BorrowError, R>

/**
 * What a pool is made of.
 *
 * @since 0.1.0
 * @category models
 */
export interface MakeOptions {
  readonly server: ServerConfig.ServerConfig
  readonly config: PoolConfig
  /** Where the pool reports exhaustion, high error rates and breaker changes. */
  readonly alerts?: Alerts.Alerts | undefined
  /** What becomes of a stdio server's stderr (default `"log"`, at Debug). */
  readonly serverStderr?: Connection.ServerStderr | undefined
  /** Handlers for what the server asks (elicitation, sampling, roots); ignored when `hub` is given. */
  readonly handlers?: ServerRequests.Handlers | undefined
  /** The server's session layer, shared with the pools that replace this one (the manager gives it). */
  readonly hub?: Hub.Hub | undefined
}

/** The shared state of a new pool, in the current scope. */
const makeState = (options: MakeOptions) =>
  Effect.gen(function* () {
    const { server, config, alerts } = options
    const hub = options.hub ?? (yield* Hub.make({ server, handlers: options.handlers }))
    const clock = yield* Clock.clockWith(Effect.succeed)
    const scope = yield* Effect.scope
    const runFork = yield* FiberSet.makeRuntime<never>()
    const limits = limitsOf(config)
    const telemetry = new Telemetry.PoolTelemetry({
      serverName: server.name,
      transport: server.transport,
      context: yield* Effect.context<never>()
    })
    const thresholds = alerts?.thresholds ?? Alerts.thresholds()
    const state: PoolState = {
      serverName: server.name,
      server,
      config,
      limits,
      requestOptions: { timeout: limits.requestTimeoutMs },
      clock,
      scope,
      background: (effect) => runFork(Effect.annotateLogs(effect, { server: server.name })),
      telemetry,
      scrub: ServerConfig.scrubber(server),
      serverStderr: options.serverStderr ?? "log",
      alerts,
      thresholds,
      breaker: makeBreaker({
        serverName: server.name,
        failureThreshold: config.circuitBreakerFailureThreshold,
        recoveryTimeoutMs: limits.recoveryTimeoutMs,
        telemetry,
        alerts
      }),
      counters: zeroCounters(),
      window: SlidingWindow.make(thresholds.errorRateWindowMs),
      members: [],
      opening: 0,
      hurry: new Set(),
      line: new WaitQueue<Ticket, LineFailure>({
        clock,
        scope,
        onTimeout: () => Admission.exhaustedError(state),
        onAbandoned: (ticket) => Admission.release(state, ticket),
        // Nothing open and a connection being opened: the borrowers get its outcome (bounded by
        // connectionTimeout), not MCPPoolExhausted at the same moment as its failure.
        hold: () => Members.awaitingFirstOpen(state)
      }),
      phase: "open",
      streak: 0,
      profile: new ServerProfile(),
      growth: Growth.make(),
      lastConnectError: undefined,
      lastHealthCheckFailureAt: undefined,
      pingsInFlight: 0,
      lastFailureAt: Number.NEGATIVE_INFINITY,
      exhaustionActive: false,
      errorRateActive: false,
      latestInfo: { capabilities: undefined, version: undefined },
      successor: undefined,
      adopt: (member) => Admission.offer(state, member),
      onEmpty: undefined,
      hub,
      host: undefined,
      anchor: undefined
    }
    state.host = host(state)
    return state
  })

/** What the pool's close does: refuse everything from now on, then close every connection in parallel. */
const shutdown = (state: PoolState): Effect.Effect<void> =>
  Effect.suspend(() => {
    state.phase = "closed"
    state.line.close(Admission.closed(state, "waiting for a connection"))
    return Members.closeAll(state)
  })

/** Starts draining into `successor`; succeeds once the pool is empty. */
const drain = (state: PoolState, successor: MCPConnectionPool): Effect.Effect<void> =>
  Effect.suspend(() => {
    if (state.phase === "open") {
      state.phase = "draining"
      state.successor = successor
      state.line.failAll(new Forwarded())
      for (const member of state.members.filter((m) => m.active === 0)) Members.remove(state, member)
    }
    return Effect.callback<void>((resume) => {
      if (state.members.length === 0 && state.opening === 0) return resume(Effect.void)
      state.onEmpty = () => resume(Effect.void)
    })
  })

/**
 * Creates a pool for one server. It opens `minConnections` in parallel in the background
 * (use `warmUp` to wait for them) and closes every connection when the scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: MakeOptions): Effect.Effect<MCPConnectionPool, never, Scope.Scope> =>
  Effect.gen(function* () {
    const state = yield* makeState(options)
    const unregister = state.telemetry.register({
      counters: state.counters,
      connections: () => {
        const used = Snapshots.reading(state, 0).inUse
        return { idle: state.members.length - used, used }
      },
      pending: () => state.line.size,
      breakerState: () => Telemetry.breakerStateValue(state.breaker.stateUnsafe(state.clock.currentTimeMillisUnsafe())),
      minConnections: state.config.minConnections,
      maxConnections: state.config.maxConnections,
      concurrencyLimit: () => Snapshots.meanLimit(state),
      catalogLookups: state.hub.catalog.lookups
    })
    yield* Scope.addFinalizer(state.scope, Effect.sync(unregister))
    // Adaptive growth reads this machine's load; its timer goes with the last pool that may.
    if (state.limits.adaptive !== undefined) yield* Scope.addFinalizer(state.scope, Effect.sync(Load.hold()))
    // Runs first (finalizers run in reverse): nothing starts again, every connection closes in
    // parallel, then the background fibers (opening, retiring) are interrupted.
    yield* Scope.addFinalizer(state.scope, shutdown(state))
    // The server's session layer turns to this pool; before anything closes, it stops.
    const leave = state.host === undefined ? () => undefined : state.hub.serve(state.host)
    yield* Scope.addFinalizer(state.scope, Effect.sync(leave))

    // `minConnections` opened in parallel from the start.
    const initial = Array.from({ length: state.config.minConnections }, () => Members.open(state, false))
    state.background(Members.retireIdle(state))

    const pool: MCPConnectionPool = {
      serverName: state.serverName,
      server: state.server,
      config: state.config,
      request: (info, run) => RequestPath.request(state, info, run),
      requestNow: (info, run, caller) => RequestNow.requestNow(state, info, run, caller),
      withConnection: (f) =>
        orForward(state, Admission.withConnection(state, f), (next) => next.withConnection(f), "withConnection"),
      lease: orForward<Connection.Connection, never, Scope.Scope>(
        state,
        Admission.lease(state),
        (next) => next.lease,
        "lease"
      ),
      invalidate: (connection) =>
        Effect.sync(() => {
          const member = state.members.find((m) => m.connection === connection)
          if (member !== undefined) Members.remove(state, member)
        }),
      warmUp: Effect.asVoid(Fiber.awaitAll(initial)),
      snapshot: () => Snapshots.snapshot(state),
      counters: state.counters,
      connections: () => state.members.map((member) => member.connection),
      breaker: state.breaker,
      checkHealth: (check) => Health.check(state, check?.onDemand === true),
      drain: (successor) => drain(state, successor),
      serverInfo: () => state.latestInfo,
      catalogList: (kind, fill) =>
        state.config.catalog === "off"
          ? fill
          : state.hub.catalog.list({
              kind,
              ttlMs: state.limits.catalogTtlMs,
              now: state.clock.currentTimeMillisUnsafe(),
              fill,
              fork: state.background
            }),
      primeClient: (client) => state.hub.catalog.prime(client),
      session: state.hub
    }
    return pool
  })
