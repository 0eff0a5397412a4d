/**
 * The pool's side of `Telemetry`: the metric series of one pool (made once, so a call only
 * updates them), the bookkeeping of one request, and its CLIENT span.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import type * as Scope from "effect/Scope"
import * as Metric from "effect/Metric"
import * as Tracer from "effect/Tracer"
import type { Permit } from "./circuitBreaker.js"
import {
  ACQUIRE_SPAN_NAME,
  LEASE_SPAN_NAME,
  Attribute,
  CurrentPropagator,
  errorType,
  isToolError,
  MetricName,
  networkTransport,
  operationBoundaries,
  poolBoundaries,
  type Propagator,
  TOOL_ERROR,
  targetAttribute
} from "../Telemetry.js"

/** Distinct targets (tools, prompts, resources) kept as their own series per method; the rest share one. */
const MAX_TARGETS_PER_METHOD = 256
const NO_STACK = { captureStackTrace: false } as const
const SECONDS = "s"

/** What the lazily read series of a pool read. */
export interface PoolSources {
  readonly counters: {
    readonly hits: number
    readonly misses: number
    readonly requests: number
    readonly errors: number
    readonly connectionErrors: number
    readonly exhausted: number
    readonly healthCheckFailures: number
  }
  /** Connections open and lent (`used`) or not (`idle`) now. */
  readonly connections: () => { readonly idle: number; readonly used: number }
  readonly pending: () => number
  /** 0 closed, 1 half-open, 2 open. */
  readonly breakerState: () => number
  readonly minConnections: number
  readonly maxConnections: number
}

type Counter = Metric.Counter<number>

/**
 * A histogram series whose state the pool keeps: recording is a bucket search and four
 * additions. `Metric.histogram(...).updateUnsafe` looks its series up in the registry on every
 * update (three lookups), which a request paying for three histograms notices. The series is
 * registered once with `Metric.registerUnsafe`, so exporters read it like any other, and is
 * shared by every pool that records the same name and attributes in the same registry (a pool
 * rebuilt by `configureServerPool` continues its predecessor's counts).
 */
export class Histogram {
  readonly #boundaries: Float64Array
  readonly #counts: Float64Array
  #count = 0
  #sum = 0
  #min = Number.MAX_VALUE
  #max = -Number.MAX_VALUE

  constructor(boundaries: ReadonlyArray<number>) {
    this.#boundaries = Float64Array.from(boundaries.toSorted((a, b) => a - b))
    this.#counts = new Float64Array(boundaries.length + 1)
  }

  /** Counts `value` in the first bucket whose upper boundary is at least `value`. */
  record(value: number): void {
    const boundaries = this.#boundaries
    let low = 0
    let high = boundaries.length
    while (low < high) {
      const mid = (low + high) >>> 1
      if (value <= (boundaries[mid] ?? 0)) high = mid
      else low = mid + 1
    }
    this.#counts[low] = (this.#counts[low] ?? 0) + 1
    this.#count++
    this.#sum += value
    if (value < this.#min) this.#min = value
    if (value > this.#max) this.#max = value
  }

  /** The state in the shape of effect's histograms: cumulative counts per upper boundary. */
  state(): Metric.HistogramState {
    const buckets: Array<[number, number]> = []
    let cumulative = 0
    for (let i = 0; i < this.#boundaries.length; i++) {
      cumulative += this.#counts[i] ?? 0
      buckets.push([this.#boundaries[i] ?? 0, cumulative])
    }
    return { buckets, count: this.#count, min: this.#min, max: this.#max, sum: this.#sum }
  }
}

const histograms = new WeakMap<Metric.MetricRegistry, Map<string, Histogram>>()

/** The series `name` with `attributes` in the registry of `context`, registered on first use. */
const histogram = (
  context: Context.Context<never>,
  name: string,
  options: {
    readonly description: string
    readonly boundaries: ReadonlyArray<number>
    readonly attributes: Readonly<Record<string, string>>
  }
): Histogram => {
  const registry = Context.get(context, Metric.MetricRegistry)
  let series = histograms.get(registry)
  if (series === undefined) {
    series = new Map()
    histograms.set(registry, series)
  }
  const key = `${name}\u0000${JSON.stringify(Object.entries(options.attributes).toSorted(([a], [b]) => (a < b ? -1 : 1)))}`
  let found = series.get(key)
  if (found === undefined) {
    const made = new Histogram(options.boundaries)
    Metric.registerUnsafe(Metric.histogram(name, options), context, {
      get: () => made.state(),
      update: (value) => made.record(value),
      modify: (value) => made.record(value)
    })
    series.set(key, made)
    found = made
  }
  return found
}

/** A request's error outcome: absent on success. */
const NONE = ""

/** The metric series of one pool, recorded in the registry of the context the pool was made in. */
export class PoolTelemetry {
  readonly serverName: string
  readonly transport: "pipe" | "tcp"
  readonly context: Context.Context<never>
  readonly waitTime: Histogram
  readonly useTime: Histogram
  readonly createTime: Histogram
  readonly #base: Readonly<Record<string, string>>
  /** method -> target ("" when none) -> error type ("" on success) -> series */
  readonly #operations = new Map<string, Map<string, Map<string, Histogram>>>()
  readonly #sessions = new Map<string, Histogram>()
  readonly #counters = new Map<string, Counter>()

  constructor(options: {
    readonly serverName: string
    readonly transport: "stdio" | "streamable-http" | "sse"
    readonly context: Context.Context<never>
  }) {
    this.serverName = options.serverName
    this.transport = networkTransport(options.transport)
    this.context = options.context
    this.#base = { [Attribute.poolName]: this.serverName }
    const timed = { ...this.#base, [Attribute.unit]: SECONDS }
    this.waitTime = histogram(this.context, MetricName.waitTime, {
      description: "Time a pooled request waited for a connection",
      boundaries: poolBoundaries,
      attributes: timed
    })
    this.useTime = histogram(this.context, MetricName.useTime, {
      description: "Time a pooled request held its connection",
      boundaries: poolBoundaries,
      attributes: timed
    })
    this.createTime = histogram(this.context, MetricName.createTime, {
      description: "Time to open a connection, MCP handshake included",
      boundaries: poolBoundaries,
      attributes: timed
    })
  }

  /** The series of `mcp.client.operation.duration` for one method, target and outcome. */
  operation(method: string, target: string | undefined, error: string | undefined): Histogram {
    let byTarget = this.#operations.get(method)
    if (byTarget === undefined) {
      byTarget = new Map()
      this.#operations.set(method, byTarget)
    }
    const targetKey = target === undefined || byTarget.size >= MAX_TARGETS_PER_METHOD ? NONE : target
    let byError = byTarget.get(targetKey)
    if (byError === undefined) {
      byError = new Map()
      byTarget.set(targetKey, byError)
    }
    const errorKey = error ?? NONE
    let series = byError.get(errorKey)
    if (series === undefined) {
      const attributes: Record<string, string> = {
        [Attribute.methodName]: method,
        [Attribute.networkTransport]: this.transport,
        [Attribute.poolName]: this.serverName,
        [Attribute.unit]: SECONDS
      }
      const key = targetAttribute(method)
      if (key !== undefined && targetKey !== NONE) attributes[key] = targetKey
      if (errorKey !== NONE) attributes[Attribute.errorType] = errorKey
      series = histogram(this.context, MetricName.operationDuration, {
        description: "Duration of MCP requests through the pool, waiting and retries included",
        boundaries: operationBoundaries,
        attributes
      })
      byError.set(errorKey, series)
    }
    return series
  }

  record(series: Histogram, seconds: number): void {
    series.record(seconds)
  }

  /** Notes the close of a connection that lived `seconds`; `lost` when it died on its own. */
  session(seconds: number, lost: boolean): void {
    const key = lost ? "MCPConnectionError" : NONE
    let series = this.#sessions.get(key)
    if (series === undefined) {
      const attributes: Record<string, string> = {
        [Attribute.networkTransport]: this.transport,
        [Attribute.poolName]: this.serverName,
        [Attribute.unit]: SECONDS
      }
      if (lost) attributes[Attribute.errorType] = key
      series = histogram(this.context, MetricName.sessionDuration, {
        description: "Lifetime of MCP connections, recorded when they close",
        boundaries: operationBoundaries,
        attributes
      })
      this.#sessions.set(key, series)
    }
    series.record(seconds)
  }

  #count(key: string, make: () => Counter): void {
    let counter = this.#counters.get(key)
    if (counter === undefined) {
      counter = make()
      this.#counters.set(key, counter)
    }
    counter.updateUnsafe(1, this.context)
  }

  /** Notes a circuit breaker transition. */
  transition(from: string, to: string): void {
    this.#count(`breaker\u0000${from}\u0000${to}`, () =>
      Metric.counter(MetricName.circuitBreakerTransitions, {
        description: "Circuit breaker transitions",
        incremental: true,
        attributes: { ...this.#base, [Attribute.breakerFrom]: from, [Attribute.breakerTo]: to }
      })
    )
  }

  /** Notes an alert raised about the pool. */
  alert(type: string, severity: string): void {
    this.#count(`alert\u0000${type}\u0000${severity}`, () =>
      Metric.counter(MetricName.alerts, {
        description: "Alerts raised",
        incremental: true,
        attributes: { ...this.#base, [Attribute.alertType]: type, [Attribute.alertSeverity]: severity }
      })
    )
  }

  /**
   * Registers the series read from the pool's own counters and state when an exporter
   * collects (nothing to do per call). Returns the function that removes them.
   */
  register(sources: PoolSources): () => void {
    const base = this.#base
    const { counters } = sources
    const registrations = [
      lazyCounter(MetricName.hits, "Acquisitions served by an existing connection", base, () => counters.hits),
      lazyCounter(MetricName.misses, "Acquisitions that opened a connection", base, () => counters.misses),
      lazyCounter(MetricName.requests, "Calls made through the pool", base, () => counters.requests),
      lazyCounter(MetricName.errors, "Calls that ended in an error", base, () => counters.errors),
      lazyCounter(MetricName.connectionErrors, "Connection-level failures", base, () => counters.connectionErrors),
      lazyCounter(
        MetricName.healthCheckFailures,
        "Connections that failed a health check",
        base,
        () => counters.healthCheckFailures
      ),
      lazyCounter(
        MetricName.timeouts,
        "Borrowers that found no connection within acquireTimeout",
        base,
        () => counters.exhausted
      ),
      lazyGauge(
        MetricName.connectionCount,
        "Connections open now, by state",
        { ...base, [Attribute.connectionState]: "idle" },
        () => sources.connections().idle
      ),
      lazyGauge(
        MetricName.connectionCount,
        "Connections open now, by state",
        { ...base, [Attribute.connectionState]: "used" },
        () => sources.connections().used
      ),
      lazyGauge(MetricName.pendingRequests, "Borrowers waiting for a connection", base, sources.pending),
      lazyGauge(MetricName.idleMin, "minConnections", base, () => sources.minConnections),
      lazyGauge(MetricName.limit, "maxConnections", base, () => sources.maxConnections),
      lazyGauge(
        MetricName.circuitBreakerState,
        "Circuit breaker state: 0 closed, 1 half-open, 2 open",
        base,
        sources.breakerState
      )
    ].map((register) => register(this.context))
    return () => {
      for (const registration of registrations) registration.remove()
    }
  }
}

const ignore = () => {}

/** A counter series whose value is read from `read` when collected. */
const lazyCounter =
  (name: string, description: string, attributes: Readonly<Record<string, string>>, read: () => number) =>
  (context: Context.Context<never>): Metric.Registration =>
    Metric.registerUnsafe(Metric.counter(name, { description, incremental: true, attributes }), context, {
      get: () => ({ count: read(), incremental: true }),
      update: ignore,
      modify: ignore
    })

/** A gauge series whose value is read from `read` when collected. */
const lazyGauge =
  (name: string, description: string, attributes: Readonly<Record<string, string>>, read: () => number) =>
  (context: Context.Context<never>): Metric.Registration =>
    Metric.registerUnsafe(Metric.gauge(name, { description, attributes }), context, {
      get: () => ({ value: read() }),
      update: ignore,
      modify: ignore
    })

/** The gauge value of a breaker state. */
export const breakerStateValue = (state: "closed" | "half_open" | "open"): number =>
  state === "open" ? 2 : state === "half_open" ? 1 : 0

/** A tool result with `isError: true`, as the failure a span ends with. */
class ToolResultError extends Error {
  override readonly name = "ToolResultError"
}

/** The bookkeeping of one request through the pool. */
export class Call {
  readonly method: string
  readonly target: string | undefined
  readonly startedAt = performance.now()
  /** When the current attempt began to wait for a connection: the start, until a retry. */
  waitStartedAt = this.startedAt
  leasedAt = 0
  /** When the last attempt gave its connection back; 0 while an attempt holds one or after a retry began. */
  releasedAt = 0
  reused = false
  /** The trace context to send in `params._meta`, if any. */
  meta: Record<string, string> | undefined = undefined
  /** The request's CLIENT span, when a tracing backend is installed. */
  span: Tracer.Span | undefined = undefined
  acquireSpan: Tracer.Span | undefined = undefined
  propagator: Propagator | undefined = undefined
  clock: Clock.Clock | undefined = undefined
  /** Whether nothing can interrupt the caller's fiber (its request needs no AbortSignal). */
  uninterruptible = false
  /** The caller's tracer, when it has a context hook and the caller a span (see `withSpan`). */
  hookedTracer: Tracer.Tracer | undefined = undefined
  /** The circuit breaker's permit of the attempt under way, until its outcome is recorded. */
  permit: Permit | undefined = undefined

  constructor(method: string, target: string | undefined) {
    this.method = method
    this.target = target
  }
}

const injectInto = (propagator: Propagator, span: Tracer.AnySpan): Record<string, string> | undefined => {
  const carrier: Record<string, string> = {}
  propagator.inject(span, carrier)
  for (const _ in carrier) return carrier
  return undefined
}

/**
 * Starts the bookkeeping of a request in the caller's fiber. Answers whether a span should
 * be made: only when tracing is on and a tracer other than effect's native one is installed.
 * Without one, the trace context of the caller's span (if any) is still sent.
 */
export const begin = (fiber: Fiber.Fiber<unknown, unknown>, call: Call): boolean => {
  const cache = fiber.cache
  if (!cache.tracerEnabled) return false
  const tracer = cache.tracer
  if (tracer === undefined || tracer === Tracer.nativeTracer) {
    const parent = cache.span
    if (parent !== undefined) call.meta = injectInto(fiber.getRef(CurrentPropagator), parent)
    return false
  }
  call.propagator = fiber.getRef(CurrentPropagator)
  call.clock = fiber.getRef(Clock.Clock)
  // The hook runs only while the fiber has a span: the caller's.
  if (tracer.context !== undefined && cache.span !== undefined) call.hookedTracer = tracer
  return true
}

const hookless = new WeakMap<Tracer.Tracer, Tracer.Tracer>()

/** The same tracer without its context hook: it makes the same spans. */
const withoutContextHook = (tracer: Tracer.Tracer): Tracer.Tracer => {
  let plain = hookless.get(tracer)
  if (plain === undefined) {
    plain = Tracer.make({ span: (options) => tracer.span(options) })
    hookless.set(tracer, plain)
  }
  return plain
}

/** Runs a request under its CLIENT span, `{method} {target}`. */
export const withSpan = <A, E>(call: Call, telemetry: PoolTelemetry, effect: Effect.Effect<A, E>) => {
  const attributes: Record<string, unknown> = {
    [Attribute.methodName]: call.method,
    [Attribute.networkTransport]: telemetry.transport,
    [Attribute.poolName]: telemetry.serverName,
    [Attribute.serverName]: telemetry.serverName
  }
  const key = targetAttribute(call.method)
  if (key !== undefined && call.target !== undefined) attributes[key] = call.target
  const name = call.target === undefined ? call.method : `${call.method} ${call.target}`
  // A tracer with a context hook (@effect/opentelemetry's makes the span the active
  // OpenTelemetry context) runs it on every step of a fiber that has a span, at a cost of
  // several allocations per step. The pool's own steps need no active context: they run
  // with the same tracer minus the hook and without the request's span as parent (the
  // acquire span names its parent). Only the SDK call runs under both (`withinSpan`).
  const hooked = call.hookedTracer
  return Effect.useSpan(name, { kind: "client", attributes }, (span) => {
    call.span = span
    if (call.propagator !== undefined) call.meta = injectInto(call.propagator, span)
    return hooked === undefined ? effect : Effect.withTracer(effect, withoutContextHook(hooked))
  })
}

/**
 * Runs the SDK call of a request under the request's span, so that instrumentation of an HTTP
 * transport (an OpenTelemetry fetch instrumentation, say) sees it as the active span.
 */
export const withinSpan = <A, E, R>(call: Call, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => {
  if (call.span === undefined) return effect
  const underSpan = Effect.withParentSpan(effect, call.span, NO_STACK)
  return call.hookedTracer === undefined ? underSpan : Effect.withTracer(underSpan, call.hookedTracer)
}

/** Whether a span made in this fiber would reach anybody: tracing on and a tracer other than effect's native one. */
const tracing = (fiber: Fiber.Fiber<unknown, unknown>): boolean => {
  const cache = fiber.cache
  return cache.tracerEnabled && cache.tracer !== undefined && cache.tracer !== Tracer.nativeTracer
}

/** Attaches to a borrowed connection the bookkeeping of its lease (see {@link timedLease}). */
export type Lent = <A, E, R>(connectionId: number, use: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>

/**
 * Times a connection lent to `withConnection`: the wait for it and its use go to the
 * `wait_time` and `use_time` histograms, and the whole lease is traced as `mcp_pool.lease`
 * when a tracer is installed. `borrow` calls `lent` on the connection it got.
 */
export const timedLease = <A, E, R>(
  telemetry: PoolTelemetry,
  borrow: (lent: Lent) => Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> =>
  Effect.withFiber((fiber) => {
    const started = performance.now()
    const traced = tracing(fiber)
    const body = borrow((connectionId, use) =>
      Effect.suspend(() => {
        const leasedAt = performance.now()
        telemetry.record(telemetry.waitTime, (leasedAt - started) / 1000)
        const timed = Effect.onExit(use, () =>
          Effect.sync(() => telemetry.record(telemetry.useTime, (performance.now() - leasedAt) / 1000))
        )
        return traced ? Effect.andThen(Effect.annotateCurrentSpan(Attribute.connectionId, connectionId), timed) : timed
      })
    )
    return traced ? Effect.withSpan(body, LEASE_SPAN_NAME, leaseSpanOptions(telemetry)) : body
  })

/**
 * The scoped form of {@link timedLease}, for `lease`: the use ends when the scope closes.
 * `acquire` answers the connection and its id.
 */
export const timedScopedLease = <A, E, R>(
  telemetry: PoolTelemetry,
  acquire: Effect.Effect<A, E, R>,
  connectionId: (value: A) => number
): Effect.Effect<A, E, R | Scope.Scope> =>
  Effect.withFiber((fiber) => {
    const started = performance.now()
    const traced = tracing(fiber)
    const timed = Effect.tap(acquire, (value) => {
      const leasedAt = performance.now()
      telemetry.record(telemetry.waitTime, (leasedAt - started) / 1000)
      const release = Effect.addFinalizer(() =>
        Effect.sync(() => telemetry.record(telemetry.useTime, (performance.now() - leasedAt) / 1000))
      )
      return traced
        ? Effect.andThen(Effect.annotateCurrentSpan(Attribute.connectionId, connectionId(value)), release)
        : release
    })
    if (!traced) return timed
    return Effect.flatMap(Effect.makeSpanScoped(LEASE_SPAN_NAME, leaseSpanOptions(telemetry)), (span) =>
      Effect.withParentSpan(timed, span)
    )
  })

const leaseSpanOptions = (telemetry: PoolTelemetry) =>
  ({
    kind: "internal",
    attributes: { [Attribute.poolName]: telemetry.serverName, [Attribute.serverName]: telemetry.serverName }
  }) as const

/** Opens the `mcp_pool.acquire` span around one attempt to borrow a connection. */
export const withAcquireSpan = <A, E, R>(call: Call, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => {
  const parent = call.span
  if (parent === undefined) return effect
  return Effect.flatMap(Effect.makeSpan(ACQUIRE_SPAN_NAME, { parent, kind: "internal" }), (span) => {
    call.acquireSpan = span
    return Effect.onExit(effect, (exit) =>
      Effect.sync(() => {
        call.acquireSpan = undefined
        endSpan(call, span, exit)
      })
    )
  })
}

const endSpan = (call: Call, span: Tracer.Span, exit: Exit.Exit<unknown, unknown>): void => {
  if (span.status._tag === "Ended") return
  span.end(call.clock?.currentTimeNanosUnsafe() ?? BigInt(0), exit)
}

/** Notes that a request got its connection and is about to send. */
export const leased = (call: Call, telemetry: PoolTelemetry, connectionId: number): void => {
  const now = performance.now()
  call.releasedAt = 0
  call.leasedAt = now
  telemetry.record(telemetry.waitTime, (now - call.waitStartedAt) / 1000)
  const span = call.span
  if (span === undefined) return
  span.attribute(Attribute.connectionId, connectionId)
  span.attribute(Attribute.connectionReused, call.reused)
  const acquire = call.acquireSpan
  if (acquire !== undefined) {
    call.acquireSpan = undefined
    acquire.attribute(Attribute.connectionId, connectionId)
    endSpan(call, acquire, Exit.void)
  }
}

/** Notes that a request is done with its connection. */
export const released = (call: Call, telemetry: PoolTelemetry): void => {
  const now = performance.now()
  call.releasedAt = now
  telemetry.record(telemetry.useTime, (now - call.leasedAt) / 1000)
}

/** Notes that a request starts another attempt (a retry or a direct connection): it waits anew. */
export const attemptAgain = (call: Call): void => {
  call.waitStartedAt = performance.now()
  call.releasedAt = 0
}

/** Records the end of a request: its duration, and `error.type` on the span. */
export const end = (call: Call, telemetry: PoolTelemetry, exit: Exit.Exit<unknown, unknown>): void => {
  // The request ends right after its last attempt gave its connection back: reuse that time.
  const seconds = ((call.releasedAt === 0 ? performance.now() : call.releasedAt) - call.startedAt) / 1000
  let error: string | undefined
  if (exit._tag === "Success") {
    if (call.method === "tools/call" && isToolError(exit.value)) error = TOOL_ERROR
  } else {
    const failure = Exit.findErrorOption(exit)
    if (failure._tag === "Some") error = errorType(failure.value)
    else if (Exit.hasDies(exit)) error = "_OTHER"
  }
  telemetry.record(telemetry.operation(call.method, call.target, error), seconds)
  const span = call.span
  if (span === undefined || error === undefined) return
  span.attribute(Attribute.errorType, error)
  if (error === TOOL_ERROR) {
    const what = call.target === undefined ? "the tool" : `tool "${call.target}"`
    endSpan(call, span, Exit.fail(new ToolResultError(`${what} returned a result with isError: true`)))
  }
}
