/**
 * A pool of live connections to one MCP server, on effect's `Pool`: min/max size, idle
 * expiry, per-connection concurrency, acquire and request timeouts, safe retries, fallback.
 *
 * @since 0.1.0
 */
import type { Client } from "@modelcontextprotocol/sdk/client/index.js"
import type { RequestOptions } from "@modelcontextprotocol/sdk/shared/protocol.js"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Pool from "effect/Pool"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import type * as Alerts from "./Alerts.js"
import * as CircuitBreaker from "./CircuitBreaker.js"
import * as Connection from "./Connection.js"
import { type MCPCallError, type MCPCircuitOpen, MCPConnectionError, MCPPoolExhausted } from "./Errors.js"
import { classify } from "./internal/classify.js"
import * as Telemetry from "./internal/telemetry.js"
import { WaitQueue } from "./internal/waitQueue.js"
import * as SlidingWindow from "./internal/window.js"
import type { PoolConfig } from "./PoolConfig.js"
import * as ServerConfig from "./ServerConfig.js"

/**
 * The most requests ever put in flight on one SDK client at once, whatever
 * `maxConcurrentRequestsPerConnection` says; the rest wait in the pool.
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_IN_FLIGHT_PER_CONNECTION = 256

/**
 * Declares that no interruption can reach the fibers of a context: a request they make goes to
 * the SDK without an `AbortSignal`, which saves the SDK a listener per call. The Promise API
 * sets it, since nothing can interrupt the fiber behind a Promise it returned.
 *
 * **Gotchas**: set it only where that holds. An interrupted fiber that set it stops waiting
 * for its answer, but the request runs on in the server until it answers or times out.
 *
 * @since 0.1.0
 * @category references
 */
export const Uninterruptible: Context.Reference<boolean> = Context.Reference<boolean>(
  "@mcp-pool/core/MCPConnectionPool/Uninterruptible",
  { defaultValue: () => false }
)

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
  /** Calls that ended in an error (after retries and fallback). */
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
  /** Connections opened, and closed, since the start. */
  opened: number
  closed: number
  /** Health checks run, and connections that failed one. */
  healthChecks: number
  healthCheckFailures: number
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
  /** Clock time (epoch ms) of the snapshot. */
  readonly takenAt: number
}

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
}

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
  /** Lends one connection for the whole of `f` (no retry, no request timeout). */
  readonly withConnection: <A, E, R>(
    f: (connection: Connection.Connection) => Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | MCPConnectionError | MCPPoolExhausted, R>
  /** Lends one connection until the scope closes. */
  readonly lease: Effect.Effect<Connection.Connection, MCPConnectionError | MCPPoolExhausted, Scope.Scope>
  /** Removes a connection from the pool; it is closed once its borrowers return it. */
  readonly invalidate: (connection: Connection.Connection) => Effect.Effect<void>
  /** Waits until `minConnections` are open (or failed to open). */
  readonly warmUp: Effect.Effect<void>
  readonly snapshot: () => Snapshot
  /** The live counters (mutable; read-only for callers). */
  readonly counters: Readonly<Counters>
  /** Every connection open now. */
  readonly connections: () => ReadonlyArray<Connection.Connection>
  /** The pool's circuit breaker. */
  readonly breaker: CircuitBreaker.CircuitBreaker
  /** The alerts the pool reports to, if any. */
  readonly alerts: Alerts.Alerts | undefined
  /** Connections that no borrower holds now (what a health check pings). */
  readonly idleConnections: () => ReadonlyArray<Connection.Connection>
  /**
   * Pings a connection, bounded by `connectionTimeout` on effect's clock; a connection that
   * fails or does not answer is marked dead and invalidated. Answers whether it was healthy.
   */
  readonly check: (connection: Connection.Connection) => Effect.Effect<boolean>
  /** Notes the outcome of one health check (for counters, status and alerts). */
  readonly recordHealthCheck: (checked: number, failed: number) => Effect.Effect<void>
  /** Opens connections until `minConnections` are live (unless the breaker is open). */
  readonly topUp: Effect.Effect<void>
  /** Re-evaluates the pool's alert conditions (exhaustion, error rate, breaker). */
  readonly evaluateAlerts: Effect.Effect<void>
  /** The server's capabilities and version, from the latest handshake. */
  readonly serverInfo: () => {
    readonly capabilities: ReturnType<Client["getServerCapabilities"]>
    readonly version: ReturnType<Client["getServerVersion"]>
  }
}

/** A connection found dead or unresponsive when it was about to be lent: borrow another. */
class Stale {
  readonly _tag = "Stale"
}

/** What an attempt that failed with `error` tells the breaker. */
const errorOutcome = (error: MCPCallError): CircuitBreaker.Outcome => {
  switch (error._tag) {
    case "MCPConnectionError":
    case "MCPTimeout":
      return "failure"
    // The server answered: it is up, whatever it said.
    case "MCPRequestError":
      return "success"
    default:
      return "ignored"
  }
}

/** What a finished attempt tells the breaker. */
const breakerOutcome = (exit: Exit.Exit<unknown, MCPCallError>): CircuitBreaker.Outcome => {
  if (exit._tag === "Success") return "success"
  const error = Exit.findErrorOption(exit)
  return error._tag === "None" ? "ignored" : errorOutcome(error.value)
}

const transitionWords: Record<CircuitBreaker.State, string> = {
  open: "opened",
  half_open: "half-open",
  closed: "closed"
}

const seconds = (value: number): number => Math.round(value * 1000)

/**
 * How exhausted a pool is: the share of its connections in use or promised to a borrower
 * waiting in line. A connection just released to a waiting borrower is as good as in use;
 * counting it free would end the condition at every release under sustained load. The
 * `pool_exhaustion` alert and the pool's `warning` status both judge this against
 * `utilizationThreshold`.
 *
 * @since 0.1.0
 * @category utils
 */
export const exhaustion = (inUse: number, waiting: number, maxConnections: number): number =>
  maxConnections === 0 ? 0 : Math.min(maxConnections, inUse + waiting) / maxConnections

/** Whether a failed attempt may be repeated: only a connection failure, and only when the request cannot have run or may run twice. */
const retryable = (error: MCPCallError, idempotent: boolean): boolean =>
  error._tag === "MCPConnectionError" && (!error.requestSent || idempotent)

/**
 * Creates a pool for one server. It opens `minConnections` in parallel in the background
 * (use `warmUp` to wait for them) and closes every connection when the scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: {
  readonly server: ServerConfig.ServerConfig
  readonly config: PoolConfig
  /** Where the pool reports exhaustion, high error rates and breaker changes. */
  readonly alerts?: Alerts.Alerts | undefined
}): Effect.Effect<MCPConnectionPool, never, Scope.Scope> =>
  Effect.gen(function* () {
    const { server, config, alerts } = options
    const serverName = server.name
    const clock = yield* Clock.clockWith(Effect.succeed)
    const telemetry = new Telemetry.PoolTelemetry({
      serverName,
      transport: server.transport,
      context: yield* Effect.context<never>()
    })
    const scrub = ServerConfig.scrubber(server)
    const counters: Counters = {
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
      opened: 0,
      closed: 0,
      healthChecks: 0,
      healthCheckFailures: 0
    }
    let lastConnectFailed = false
    let lastHealthCheckFailureAt: number | undefined
    let pingsInFlight = 0
    const errorWindowMs = alerts?.thresholds.errorRateWindowMs ?? 60_000
    const window = SlidingWindow.make(errorWindowMs)
    let lastFailureAt = Number.NEGATIVE_INFINITY
    const utilizationThreshold = alerts?.thresholds.utilizationThreshold ?? 0.9
    const errorRateThreshold = alerts?.thresholds.errorRateThreshold ?? 0.1
    const errorRateMinRequests = alerts?.thresholds.errorRateMinRequests ?? 20

    const breaker = CircuitBreaker.make({
      name: serverName,
      failureThreshold: config.circuitBreakerFailureThreshold,
      recoveryTimeout: seconds(config.circuitBreakerRecoveryTimeout),
      onTransition: (t) => {
        telemetry.transition(t.from, t.to)
        const line = `Circuit breaker for "${serverName}" ${transitionWords[t.to]}: ${t.reason}`
        const log =
          t.to === "open"
            ? Effect.logError(line)
            : t.to === "half_open"
              ? Effect.logWarning(line)
              : Effect.logInfo(line)
        return Effect.andThen(
          log.pipe(Effect.annotateLogs({ server: serverName, circuit_breaker: t.to })),
          alerts === undefined
            ? Effect.void
            : alerts.observe(serverName, "circuit_breaker_open", t.to !== "closed", () => {
                telemetry.alert("circuit_breaker_open", "critical")
                return {
                  severity: "critical",
                  message: `circuit breaker of "${serverName}" opened: ${t.reason}; calls fail fast until ${new Date(
                    t.at + breaker.recoveryTimeoutMs
                  ).toISOString()}`
                }
              })
        )
      }
    })
    const live = new Set<Connection.Connection>()
    const concurrency = Math.min(config.maxConcurrentRequestsPerConnection, MAX_IN_FLIGHT_PER_CONNECTION)
    const connectionTimeoutMs = seconds(config.connectionTimeout)
    const acquireTimeoutMs = seconds(config.acquireTimeout)
    const requestTimeoutMs = seconds(config.requestTimeout)
    const aliveBypassMs = seconds(config.aliveBypassWindow)
    let latestInfo: ReturnType<MCPConnectionPool["serverInfo"]> = { capabilities: undefined, version: undefined }
    let pool: Pool.Pool<Connection.Connection, MCPConnectionError> | undefined

    const connectionOptions: Connection.MakeOptions = {
      server,
      connectionTimeoutMs,
      shutdownGracePeriodMs: seconds(config.shutdownGracePeriod),
      onDead: (connection, reason) => {
        counters.connectionErrors++
        Effect.runFork(
          Effect.logWarning(`connection #${connection.id} to "${serverName}" died: ${reason}`).pipe(
            Effect.andThen(invalidate(connection))
          )
        )
      }
    }

    const acquire = Effect.suspend(() => {
      const openedOnDemand = pool !== undefined && pool.state.usage > 0
      const started = performance.now()
      return Connection.make(connectionOptions).pipe(
        Effect.tap((connection) =>
          Effect.acquireRelease(
            Effect.sync(() => {
              telemetry.record(telemetry.createTime, (performance.now() - started) / 1000)
              connection.openedOnDemand = openedOnDemand
              lastConnectFailed = false
              counters.opened++
              live.add(connection)
              latestInfo = {
                capabilities: connection.client.getServerCapabilities(),
                version: connection.client.getServerVersion()
              }
            }),
            () =>
              Effect.sync(() => {
                counters.closed++
                live.delete(connection)
                telemetry.session((Date.now() - connection.createdAt) / 1000, !Connection.isAlive(connection))
              })
          )
        ),
        Effect.tapError((error) =>
          Effect.sync(() => {
            counters.connectionErrors++
            lastConnectFailed = true
          }).pipe(Effect.andThen(Effect.logWarning(error.message)))
        )
      )
    })

    const scope = yield* Effect.scope
    // Borrowers that find the pool at its maximum, every connection busy. Closed after the
    // Pool's own shutdown (finalizers run in reverse), which interrupts those still asleep.
    const waiting = new WaitQueue<MCPPoolExhausted>({ clock, scope, onTimeout: () => exhausted() })
    yield* Scope.addFinalizer(
      scope,
      Effect.sync(() => waiting.close())
    )
    pool = yield* Pool.makeWithTTL({
      acquire,
      min: config.minConnections,
      max: config.maxConnections,
      concurrency,
      timeToLive: seconds(config.maxIdleTime),
      timeToLiveStrategy: "usage"
    })
    const thePool = pool
    const unregister = telemetry.register({
      counters,
      connections: () => {
        let idle = 0
        let used = 0
        for (const item of thePool.state.items) {
          if (item.exit._tag !== "Success") continue
          if (item.refCount > 0) used++
          else idle++
        }
        return { idle, used }
      },
      pending: () => thePool.state.waiters.size + waiting.size,
      breakerState: () => Telemetry.breakerStateValue(breaker.stateUnsafe(clock.currentTimeMillisUnsafe())),
      minConnections: config.minConnections,
      maxConnections: config.maxConnections
    })
    yield* Scope.addFinalizer(scope, Effect.sync(unregister))
    // Runs before the Pool's own shutdown (finalizers run in reverse): close every connection
    // in parallel, so shutting down N connections takes about as long as one.
    yield* Scope.addFinalizer(
      scope,
      Effect.suspend(() => Effect.forEach(live, Connection.closeNow, { concurrency: "unbounded", discard: true }))
    )

    const invalidate = (connection: Connection.Connection): Effect.Effect<void> => Pool.invalidate(thePool, connection)

    const ping = (connection: Connection.Connection): Effect.Effect<boolean> =>
      Effect.tryPromise({
        try: (signal) => connection.client.ping({ signal, timeout: connectionTimeoutMs }),
        catch: (cause) => cause
      }).pipe(
        Effect.as(true),
        Effect.catch(() => Effect.succeed(false))
      )

    /** A connection found dead when lent: replaced, and its borrower tries again. */
    const giveUp = (connection: Connection.Connection): Effect.Effect<never, Stale> =>
      Effect.andThen(
        invalidate(connection),
        Effect.suspend(() => {
          // Its slot is free to be refilled: a borrower in line can take it.
          released()
          return Effect.fail(new Stale())
        })
      )

    /**
     * Bookkeeping of one lease, and the check that the connection is fit to lend: `undefined`
     * when it can be used at once (the common case, kept free of effects), else the effect that
     * pings it or gives it up.
     */
    const onLease = (
      connection: Connection.Connection,
      call: Telemetry.Call | undefined
    ): Effect.Effect<void, Stale> | undefined => {
      connection.leases++
      const miss = connection.leases === 1 && connection.openedOnDemand
      if (miss) counters.misses++
      else counters.hits++
      if (call !== undefined) call.reused = !miss
      if (!Connection.isAlive(connection)) return giveUp(connection)
      if (connection.inFlight === 0 && Date.now() - connection.lastUsedAt > aliveBypassMs) {
        return Effect.flatMap(ping(connection), (ok) => {
          if (ok) {
            connection.lastUsedAt = Date.now()
            return Effect.void
          }
          Connection.markDead(connection, "did not answer a ping before being lent")
          counters.connectionErrors++
          return giveUp(connection)
        })
      }
      return undefined
    }

    /** Runs `f` on a connection just lent, after its lease check. */
    const lent = <A, E, R>(
      connection: Connection.Connection,
      call: Telemetry.Call | undefined,
      f: (connection: Connection.Connection) => Effect.Effect<A, E, R>
    ): Effect.Effect<A, E | Stale, R> => {
      const checked = onLease(connection, call)
      return checked === undefined
        ? f(connection)
        : Effect.andThen(
            checked,
            Effect.suspend(() => f(connection))
          )
    }

    const connectionsInUse = (): number => {
      let inUse = 0
      for (const item of thePool.state.items) if (item.exit._tag === "Success" && item.refCount > 0) inUse++
      return inUse
    }

    let exhaustionActive = false
    /**
     * Judges the utilization alert on {@link exhaustion}. `joining` is 1 when a borrower that is
     * about to wait in line asks: it is not in the line yet, and counts.
     */
    const observeUtilizationWith = (joining: 0 | 1): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (alerts === undefined) return Effect.void
        const inUse = connectionsInUse()
        const waiters = thePool.state.waiters.size + waiting.size + joining
        const max = config.maxConnections
        const current = exhaustion(inUse, waiters, max)
        const active = current > utilizationThreshold
        // The alert is raised on entering the condition: nothing to tell Alerts while it holds.
        if (active === exhaustionActive) return Effect.void
        exhaustionActive = active
        return alerts.observe(serverName, "pool_exhaustion", exhaustionActive, () => {
          telemetry.alert("pool_exhaustion", "warning")
          return {
            severity: "warning",
            message: `pool of "${serverName}" is ${Math.round(current * 100)} % utilized (${inUse} of ${max} connections in use, ${waiters} waiting)`
          }
        })
      })
    const observeUtilization = observeUtilizationWith(0)
    const observeUtilizationJoining = observeUtilizationWith(1)

    let errorRateActive = false
    const observeErrorRate: Effect.Effect<void> = Effect.suspend(() => {
      if (alerts === undefined) return Effect.void
      const { requests, errors } = window.totals(clock.currentTimeMillisUnsafe())
      const rate = requests === 0 ? 0 : errors / requests
      const active = requests >= errorRateMinRequests && rate > errorRateThreshold
      if (active === errorRateActive) return Effect.void
      errorRateActive = active
      return alerts.observe(serverName, "high_error_rate", errorRateActive, () => {
        telemetry.alert("high_error_rate", "warning")
        return {
          severity: "warning",
          message: `${Math.round(rate * 1000) / 10} % of the calls to "${serverName}" failed (${errors} of ${requests} in the last ${Math.round(
            alerts.thresholds.errorRateWindowMs / 1000
          )} s)`
        }
      })
    })

    const exhausted = () => {
      counters.exhausted++
      return new MCPPoolExhausted({ serverName, acquireTimeoutMs, maxConnections: config.maxConnections })
    }

    /** Every connection busy and the pool at its maximum: a borrower can only wait for a release. */
    const atCapacity = (state: Pool.State<Connection.Connection, MCPConnectionError>): boolean =>
      !state.isShuttingDown && state.items.size - state.invalidated.size >= config.maxConnections

    /** A lease ended: its slot can serve the borrower that has waited longest. */
    const released = (): void => {
      if (waiting.size > 0) waiting.wakeOne()
    }

    /**
     * The Pool's own wait, raced against the acquire timeout: for a pool that can still grow or
     * has a failed slot to replace. `timeoutMs` is what is left of the borrower's timeout.
     */
    const slowBorrow = <A, E, R>(
      f: (connection: Connection.Connection) => Effect.Effect<A, E, R>,
      call: Telemetry.Call | undefined,
      timeoutMs: number
    ): Effect.Effect<A, E | Stale | MCPConnectionError | MCPPoolExhausted, R> =>
      Effect.scoped(
        Pool.get(thePool).pipe(
          Effect.timeoutOrElse({ duration: Math.max(0, timeoutMs), orElse: () => Effect.fail(exhausted()) }),
          Effect.flatMap((connection) => lent(connection, call, f))
        )
      )

    /** A borrower woken by a release: takes a free slot, or falls back on the Pool's wait until `deadline`. */
    const afterWake = <A, E, R>(
      f: (connection: Connection.Connection) => Effect.Effect<A, E, R>,
      call: Telemetry.Call | undefined,
      deadline: number
    ): Effect.Effect<A, E | Stale | MCPConnectionError | MCPPoolExhausted, R> =>
      Effect.suspend(() => {
        const state = thePool.state
        if (state.waiters.size === 0 && state.availableHead?.exit._tag === "Success") {
          return Pool.use(thePool, (connection) => lent(connection, call, f))
        }
        return slowBorrow(f, call, deadline - clock.currentTimeMillisUnsafe())
      })

    /** One try at a connection, decided now: lent at once when one is free, else a wait. */
    const borrowNow = <A, E, R>(
      f: (connection: Connection.Connection) => Effect.Effect<A, E, R>,
      call: Telemetry.Call | undefined
    ): Effect.Effect<A, E | Stale | MCPConnectionError | MCPPoolExhausted, R> => {
      const state = thePool.state
      const queued = waiting.size > 0
      if (!queued && state.waiters.size === 0 && state.availableHead?.exit._tag === "Success") {
        return Pool.use(thePool, (connection) => lent(connection, call, f))
      }
      let get: Effect.Effect<A, E | Stale | MCPConnectionError | MCPPoolExhausted, R>
      let observe = observeUtilization
      if ((queued || state.availableHead === undefined) && atCapacity(state)) {
        // Wait in line for a release: one callback, no timer of its own (see WaitQueue).
        const deadline = clock.currentTimeMillisUnsafe() + acquireTimeoutMs
        get = Effect.andThen(waiting.wait(deadline), afterWake(f, call, deadline))
        observe = observeUtilizationJoining
      } else {
        get = slowBorrow(f, call, acquireTimeoutMs)
      }
      const borrowed = alerts === undefined ? get : Effect.andThen(observe, get)
      // Only a borrower that has to wait (no idle connection) gets an `mcp_pool.acquire` span.
      return call?.span === undefined ? borrowed : Telemetry.withAcquireSpan(call, borrowed)
    }

    const MAX_STALE_SKIPS = config.maxConnections + 1
    /**
     * Borrows a connection for `f`, trying again (up to one more time than there are
     * connections) when the one lent is found dead. Decides the first try now: call it when
     * the borrow is to run.
     */
    const borrowNowOrAgain = <A, E, R>(
      f: (connection: Connection.Connection) => Effect.Effect<A, E, R>,
      call?: Telemetry.Call
    ): Effect.Effect<A, E | MCPConnectionError | MCPPoolExhausted, R> => {
      const loop = (skips: number): Effect.Effect<A, E | MCPConnectionError | MCPPoolExhausted, R> =>
        Effect.catchIf(
          skips === 0 ? borrowNow(f, call) : Effect.suspend(() => borrowNow(f, call)),
          (error): error is Stale => error instanceof Stale,
          () =>
            skips < MAX_STALE_SKIPS
              ? loop(skips + 1)
              : Effect.fail(
                  new MCPConnectionError({
                    serverName,
                    reason: `no live connection: ${skips} connections in a row were found dead`,
                    requestSent: false
                  })
                )
        )
      return loop(0)
    }
    const borrow = <A, E, R>(
      f: (connection: Connection.Connection) => Effect.Effect<A, E, R>,
      call?: Telemetry.Call
    ): Effect.Effect<A, E | MCPConnectionError | MCPPoolExhausted, R> => Effect.suspend(() => borrowNowOrAgain(f, call))

    const activeSpanForSdk = server.transport !== "stdio"

    /**
     * The SDK options of a request: the pool's timeout, which bounds the whole request (progress
     * does not reset it unless the caller asks so), and the fiber's abort signal when it has one.
     * Without a signal the options are one shared object, which the SDK only reads.
     */
    const timeoutOnly: SdkRequestOptions = { timeout: requestTimeoutMs }
    const sdkOptions = (signal: AbortSignal | undefined): SdkRequestOptions =>
      signal === undefined ? timeoutOnly : { timeout: requestTimeoutMs, signal }

    /** The typed error of a request the SDK rejected, counted; a connection it proves dead is marked so. */
    const failure = (connection: Connection.Connection, info: RequestInfo, cause: unknown): MCPCallError => {
      const classified = classify(cause, {
        serverName,
        method: info.method,
        transport: server.transport,
        scrub
      })
      switch (classified._tag) {
        case "Request":
          return classified.error
        case "Timeout":
          counters.timeouts++
          return classified.error
        case "Connection":
          counters.connectionErrors++
          if (classified.dead) Connection.markDead(connection, classified.error.reason)
          return classified.error
      }
    }

    /**
     * The failure of a request the SDK rejected, classified and counted, which also drops the
     * connection it proved dead when `invalidateDead` is set.
     */
    const sdkRejected = (
      connection: Connection.Connection,
      info: RequestInfo,
      invalidateDead: boolean,
      cause: unknown
    ): Effect.Effect<never, MCPCallError> => {
      const error = failure(connection, info, cause)
      return invalidateDead && !Connection.isAlive(connection)
        ? Effect.andThen(invalidate(connection), Effect.fail(error))
        : Effect.fail(error)
    }

    /**
     * Sends one request on a lent connection. Must be called when the request runs (it counts
     * the request in flight at once). A request from a fiber nobody can interrupt (see
     * {@link Uninterruptible}) goes without an AbortSignal. A connection the failure proved
     * dead is invalidated when `invalidateDead` is set.
     */
    const runOn = <A>(
      connection: Connection.Connection,
      info: RequestInfo,
      run: Run<A>,
      invalidateDead: boolean,
      call: Telemetry.Call
    ): Effect.Effect<A, MCPCallError> => {
      connection.inFlight++
      Telemetry.leased(call, telemetry, connection.id)
      if (call.leasedAt - connection.requestMapsRenewedAt > Connection.REQUEST_MAPS_RENEWAL_MS) {
        Connection.renewRequestMaps(connection, call.leasedAt)
      }
      // The bookkeeping of the request's end runs where it ends (the SDK's answer, or the
      // interruption), not in an onExit around it: one step less on every call.
      let done = false
      const settle = (): void => {
        done = true
        connection.inFlight--
        Telemetry.released(call, telemetry)
        // The time just read for the release, as epoch milliseconds (no second clock read).
        connection.lastUsedAt = performance.timeOrigin + call.releasedAt
        released()
      }
      const start = (resume: (effect: Effect.Effect<A, MCPCallError>) => void, signal: AbortSignal | undefined) => {
        let sent: Promise<A>
        try {
          sent = run(connection.client, sdkOptions(signal), call.meta)
        } catch (cause) {
          const error = sdkRejected(connection, info, invalidateDead, cause)
          settle()
          resume(error)
          return
        }
        sent.then(
          (value) => {
            if (done) return
            settle()
            resume(Effect.succeed(value))
          },
          (cause: unknown) => {
            if (done) return
            const error = sdkRejected(connection, info, invalidateDead, cause)
            settle()
            resume(error)
          }
        )
      }
      const send: Effect.Effect<A, MCPCallError> = call.uninterruptible
        ? // Nothing can interrupt the caller: no AbortSignal (Effect.callback makes one only
          // for a function of two parameters).
          Effect.callback((resume) => start(resume, undefined))
        : Effect.callback((resume, signal) => {
            start(resume, signal)
            // Interrupted: the signal aborts the SDK request (which sends notifications/cancelled).
            return Effect.suspend(() => {
              if (done) return Effect.void
              settle()
              return invalidateDead && !Connection.isAlive(connection) ? invalidate(connection) : Effect.void
            })
          })
      // Only HTTP has transport instrumentation that could use the span as its parent.
      return activeSpanForSdk ? Telemetry.withinSpan(call, send) : send
    }

    const retrySchedule = Schedule.exponential(seconds(config.retryDelay)).pipe(Schedule.jittered)

    const direct = <A>(info: RequestInfo, run: Run<A>, call: Telemetry.Call) =>
      Effect.scoped(
        Effect.suspend(() => {
          Telemetry.attemptAgain(call)
          call.reused = false
          return Effect.flatMap(Connection.make(connectionOptions), (connection) => {
            counters.fallbacks++
            return runOn(connection, info, run, false, call)
          })
        })
      ).pipe(
        Effect.tap(() =>
          Effect.logWarning(`pool of "${serverName}" cannot serve; ran ${info.method} on a direct connection`)
        )
      )

    /**
     * One attempt under the breaker, decided now: refused at once while it is open, without
     * touching a connection; else its permit goes on the call until `settleAttempt`.
     */
    const attemptNow = <A>(info: RequestInfo, run: Run<A>, call: Telemetry.Call): Effect.Effect<A, MCPCallError> => {
      const admitted = breaker.admitUnsafe(clock.currentTimeMillisUnsafe())
      if ("rejected" in admitted) {
        counters.rejected++
        return Effect.andThen(breaker.flush, Effect.fail(admitted.rejected))
      }
      call.permit = admitted.permit
      return borrowNowOrAgain((connection) => runOn(connection, info, run, true, call), call)
    }

    /**
     * Tells the breaker how the call's attempt ended, once: when the retry schedule sees its
     * failure, before the fallback replaces it, or when the request ends, whichever comes first.
     * One step fewer than an `onExit` around each attempt.
     */
    const settleAttempt = (call: Telemetry.Call, outcome: CircuitBreaker.Outcome): void => {
      const permit = call.permit
      if (permit === undefined) return
      call.permit = undefined
      // Only a failure or a probe can move the breaker, and only a move reads the time.
      breaker.recordUnsafe(
        permit,
        outcome,
        outcome === "success" && !permit.probe ? 0 : clock.currentTimeMillisUnsafe()
      )
    }

    const request = <A>(info: RequestInfo, run: Run<A>): Effect.Effect<A, MCPCallError> =>
      Effect.withFiber((fiber) => {
        const call = new Telemetry.Call(info.method, info.target)
        call.uninterruptible = fiber.getRef(Uninterruptible)
        // Untraced, the first attempt is decided in this step; traced, once the span is open
        // (its acquire span needs the request's span as parent).
        return Telemetry.begin(fiber, call)
          ? Telemetry.withSpan(
              call,
              telemetry,
              Effect.suspend(() => requestWith(info, run, call))
            )
          : requestWith(info, run, call)
      })

    /**
     * Retries after the first failure `first`, on the pool's schedule. The retry machinery is
     * built only once an attempt has failed: a call that succeeds at once pays for one `catch`,
     * not for a schedule.
     */
    const retryAfter = <A>(
      first: MCPCallError,
      info: RequestInfo,
      run: Run<A>,
      call: Telemetry.Call
    ): Effect.Effect<A, MCPCallError> => {
      let replayed = false
      const again = Effect.suspend(() => {
        if (replayed) {
          counters.retries++
          Telemetry.attemptAgain(call)
          return attemptNow(info, run, call)
        }
        replayed = true
        return Effect.fail(first)
      })
      return Effect.retry(again, {
        schedule: retrySchedule,
        times: config.retryAttempts,
        while: (error: MCPCallError): boolean => {
          settleAttempt(call, errorOutcome(error))
          return retryable(error, info.idempotent)
        }
      })
    }

    const requestWith = <A>(info: RequestInfo, run: Run<A>, call: Telemetry.Call): Effect.Effect<A, MCPCallError> => {
      counters.requests++
      const attempt = attemptNow(info, run, call)
      const retried =
        config.retryAttempts > 0
          ? Effect.catch(attempt, (error) =>
              retryable(error, info.idempotent) ? retryAfter(error, info, run, call) : Effect.fail(error)
            )
          : attempt
      const withFallback =
        config.fallback === "direct"
          ? Effect.catchIf(
              retried,
              (error): error is MCPPoolExhausted | MCPCircuitOpen =>
                error._tag === "MCPPoolExhausted" || error._tag === "MCPCircuitOpen",
              (error) => {
                settleAttempt(call, errorOutcome(error))
                return direct(info, run, call)
              }
            )
          : retried
      return Effect.onExit(withFallback, (exit) => {
        settleAttempt(call, breakerOutcome(exit))
        Telemetry.end(call, telemetry, exit)
        const failed = exit._tag === "Failure" && Exit.hasFails(exit)
        const now = clock.currentTimeMillisUnsafe()
        if (failed) {
          counters.errors++
          lastFailureAt = now
        }
        window.record(now, failed)
        const flush = breaker.hasPendingTransitions() ? breaker.flush : undefined
        if (alerts === undefined) return flush ?? Effect.void
        // The rate can cross the threshold on a success too (more calls reach the minimum),
        // so judge it while the window holds a failure.
        let observe: Effect.Effect<void> | undefined
        if (errorRateActive || now - lastFailureAt < errorWindowMs) {
          observe = exhaustionActive ? Effect.andThen(observeErrorRate, observeUtilization) : observeErrorRate
        } else if (exhaustionActive) {
          observe = observeUtilization
        }
        if (observe === undefined) return flush ?? Effect.void
        return flush === undefined ? observe : Effect.andThen(flush, observe)
      })
    }

    const withConnection: MCPConnectionPool["withConnection"] = (f) =>
      Telemetry.timedLease(telemetry, (timed) =>
        borrow((connection) => Effect.ensuring(timed(connection.id, f(connection)), Effect.sync(released)))
      )

    const leaseUntimed: MCPConnectionPool["lease"] = Effect.gen(function* () {
      // Added before the lease, so it runs after the lease's release when the scope closes.
      yield* Effect.addFinalizer(() => Effect.sync(released))
      const acquired = yield* Pool.get(thePool).pipe(
        Effect.timeoutOrElse({ duration: acquireTimeoutMs, orElse: () => Effect.fail(exhausted()) })
      )
      const checked = yield* Effect.exit(onLease(acquired, undefined) ?? Effect.void)
      if (Exit.isSuccess(checked)) return acquired
      return yield* Effect.fail(
        new MCPConnectionError({ serverName, reason: "the connection lent was dead", requestSent: false })
      )
    })
    const lease = Telemetry.timedScopedLease(telemetry, leaseUntimed, (connection) => connection.id)

    // Each warm-up borrower holds its connection until all have one, so that `min` distinct
    // connections are open (or failed) when it returns.
    const warmUp: Effect.Effect<void> = Effect.scoped(
      Effect.forEach(Array.from({ length: config.minConnections }), () => Effect.ignore(Pool.get(thePool)), {
        concurrency: "unbounded",
        discard: true
      })
    )

    const liveCount = (): number => {
      let n = 0
      for (const item of thePool.state.items) if (item.exit._tag === "Success") n++
      return n
    }

    const idleConnections = (): ReadonlyArray<Connection.Connection> => {
      const idle: Array<Connection.Connection> = []
      for (const item of thePool.state.items) {
        if (item.exit._tag === "Success" && item.refCount === 0 && item.exit.value.inFlight === 0) {
          idle.push(item.exit.value)
        }
      }
      return idle
    }

    const check = (connection: Connection.Connection): Effect.Effect<boolean> =>
      Effect.suspend(() => {
        if (!Connection.isAlive(connection)) return Effect.succeed(false)
        pingsInFlight++
        return Effect.tryPromise({
          try: (signal) => connection.client.ping({ signal, timeout: connectionTimeoutMs }),
          catch: (cause) => cause
        }).pipe(
          Effect.as(true),
          Effect.timeoutOrElse({ duration: connectionTimeoutMs, orElse: () => Effect.fail("timeout" as const) }),
          Effect.catch((cause) => {
            const reason =
              cause === "timeout"
                ? `did not answer a health-check ping within ${connectionTimeoutMs} ms`
                : "failed a health-check ping"
            Connection.markDead(connection, reason)
            return Effect.logWarning(`connection #${connection.id} to "${serverName}" ${reason}; replacing it`).pipe(
              // The close may wait for a stuck process to be killed: do not hold the check for it.
              Effect.andThen(Effect.forkIn(invalidate(connection), scope)),
              Effect.as(false)
            )
          }),
          Effect.ensuring(
            Effect.sync(() => {
              pingsInFlight--
            })
          )
        )
      })

    const recordHealthCheck = (checked: number, failed: number): Effect.Effect<void> =>
      Effect.suspend(() => {
        counters.healthChecks++
        counters.healthCheckFailures += failed
        if (failed > 0) lastHealthCheckFailureAt = clock.currentTimeMillisUnsafe()
        if (alerts === undefined) return Effect.void
        return alerts.observe(serverName, "health_check_failure", failed > 0, () => {
          const severity = failed >= checked ? "critical" : "warning"
          telemetry.alert("health_check_failure", severity)
          return {
            severity,
            message: `${failed} of ${checked} connections to "${serverName}" failed a health check`
          }
        })
      })

    const topUp: Effect.Effect<void> = Effect.suspend(() =>
      liveCount() < config.minConnections && breaker.stateUnsafe(clock.currentTimeMillisUnsafe()) !== "open"
        ? warmUp
        : Effect.void
    )

    const evaluateAlerts: Effect.Effect<void> = Effect.andThen(
      breaker.state,
      Effect.andThen(observeUtilization, observeErrorRate)
    )

    const snapshot = (): Snapshot => {
      const now = clock.currentTimeMillisUnsafe()
      let available = 0
      let inUse = 0
      for (const item of thePool.state.items) {
        if (item.exit._tag !== "Success") continue
        if (item.refCount > 0) inUse++
        else available++
      }
      return {
        serverName,
        totalConnections: available + inUse,
        availableConnections: available,
        inUseConnections: inUse,
        pendingRequests: thePool.state.waiters.size + waiting.size,
        counters: { ...counters },
        utilization: config.maxConnections === 0 ? 0 : inUse / config.maxConnections,
        connections: Array.from(live, (connection) => ({
          id: connection.id,
          pid: connection.pid,
          sessionId: connection.sessionId,
          inFlight: connection.inFlight,
          leases: connection.leases,
          createdAt: connection.createdAt,
          lastUsedAt: connection.lastUsedAt,
          alive: Connection.isAlive(connection)
        })),
        circuitBreakerState: breaker.stateUnsafe(now),
        window: window.totals(now),
        lastHealthCheckFailureAt,
        lastConnectFailed,
        pingsInFlight,
        takenAt: now
      }
    }

    return {
      serverName,
      server,
      config,
      request,
      withConnection,
      lease,
      invalidate,
      warmUp,
      snapshot,
      counters,
      connections: () => Array.from(live),
      breaker,
      alerts,
      idleConnections,
      check,
      recordHealthCheck,
      topUp,
      evaluateAlerts,
      serverInfo: () => latestInfo
    }
  })
