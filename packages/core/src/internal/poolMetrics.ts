/**
 * The metric series of one pool, made once so that a call only updates them: histograms that
 * keep their own buckets, counters and gauges read from the pool when an exporter collects.
 */
import * as Context from "effect/Context"
import * as Metric from "effect/Metric"
import type { CatalogLookups } from "../session/Catalog.js"
import { Attribute, MetricName, operationBoundaries, poolBoundaries } from "../Telemetry.js"

/** Distinct targets (tools, prompts, resources) kept as their own series per method; the rest share one. */
const MAX_TARGETS_PER_METHOD = 256
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
  /** The mean of the connections' concurrency limits now. */
  readonly concurrencyLimit: () => number
  /** The list calls the server's catalog answered, by how. */
  readonly catalogLookups: Readonly<CatalogLookups>
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
        MetricName.concurrencyLimit,
        "Requests a connection may carry at once now, the mean over the pool's connections",
        base,
        sources.concurrencyLimit
      ),
      ...(["hit", "fill", "shared"] as const).map((result) =>
        lazyCounter(
          MetricName.catalogLookups,
          "List calls answered through the server's catalog, by how",
          { ...base, [Attribute.catalogResult]: result },
          () => sources.catalogLookups[result]
        )
      ),
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

/**
 * The `network.transport` of a server: `pipe` for stdio, `tcp` for HTTP and SSE.
 */
export const networkTransport = (transport: "stdio" | "streamable-http" | "sse"): "pipe" | "tcp" =>
  transport === "stdio" ? "pipe" : "tcp"

/**
 * The attribute that names a request's target for `method`: the tool of `tools/call`, the
 * prompt of `prompts/get`, the resource of `resources/read`; `undefined` for other methods.
 */
export const targetAttribute = (method: string): string | undefined => {
  switch (method) {
    case "tools/call":
      return Attribute.toolName
    case "prompts/get":
      return Attribute.promptName
    case "resources/read":
      return Attribute.resourceUri
    default:
      return undefined
  }
}

/**
 * The `error.type` of a failure: the JSON-RPC code (as a string) of an `MCPRequestError`,
 * else the `_tag` of a tagged error, else `_OTHER`.
 */
export const errorType = (error: unknown): string => {
  if (typeof error === "object" && error !== null && "_tag" in error && typeof error._tag === "string") {
    if (error._tag === "MCPRequestError" && "code" in error && typeof error.code === "number") {
      return String(error.code)
    }
    return error._tag
  }
  return "_OTHER"
}

/**
 * Whether a request's result is a tool result with `isError: true`.
 */
export const isToolError = (result: unknown): boolean =>
  typeof result === "object" && result !== null && "isError" in result && result.isError === true
