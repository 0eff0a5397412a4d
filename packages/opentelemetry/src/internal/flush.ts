/**
 * The flushes that must run while the pools are still open: the pools' counters and gauges are
 * read from the pools when an exporter collects, and disappear when they close.
 */
import * as Otel from "@opentelemetry/api"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"

/** How long a flush, and a shutdown, may take unless told otherwise. */
export const defaultTimeout: Duration.Input = 3_000

/** The flushes registered by the telemetry layers of one composition (or one Promise manager). */
export interface Flushes {
  readonly all: Set<{ readonly flush: Effect.Effect<void> }>
}

export const make = (): Flushes => ({ all: new Set() })

/** Where the telemetry layers register their flush; `undefined` (nobody asks) by default. */
export const Current: Context.Reference<Flushes | undefined> = Context.Reference<Flushes | undefined>(
  "@mcp-pool/opentelemetry/internal/flush/Current",
  { defaultValue: () => undefined }
)

/** Registers `flush` with the composition being built, until the registering layer closes. */
export const register = (flush: Effect.Effect<void>): Effect.Effect<void, never, Scope.Scope> =>
  Effect.flatMap(Current, (flushes) => {
    if (flushes === undefined) return Effect.void
    const entry = { flush }
    return Effect.acquireRelease(
      Effect.sync(() => flushes.all.add(entry)),
      () => Effect.sync(() => flushes.all.delete(entry))
    )
  })

/** Runs every registered flush at once. */
export const run = (flushes: Flushes): Effect.Effect<void> =>
  Effect.forEach([...flushes.all], (entry) => entry.flush, { concurrency: "unbounded", discard: true })

/** A span processor, metric reader or provider. */
export interface Flushable {
  readonly forceFlush: () => Promise<void>
}

const isFlushable = (u: unknown): u is Flushable =>
  typeof u === "object" && u !== null && "forceFlush" in u && typeof u.forceFlush === "function"

/**
 * `forceFlush` of every target at once (a periodic metric reader collects and exports, a span
 * processor exports what it holds), within `timeout`; a failure or a timeout is logged.
 */
export const forceFlush = (targets: ReadonlyArray<Flushable>, timeout: Duration.Input): Effect.Effect<void> =>
  Effect.forEach(targets, (target) => Effect.tryPromise(() => target.forceFlush()), {
    concurrency: "unbounded",
    discard: true
  }).pipe(
    Effect.timeout(timeout),
    Effect.catchCause((cause) =>
      Effect.logWarning("OpenTelemetry: flushing before the pools close failed; their last figures may be lost", cause)
    )
  )

/**
 * The global tracer and meter providers (those `@opentelemetry/sdk-node` registers), when
 * they can be flushed: the API's no-op providers cannot.
 */
export const globalProviders = (): Array<Flushable> => {
  const tracerProvider = Otel.trace.getTracerProvider()
  const tracer = tracerProvider instanceof Otel.ProxyTracerProvider ? tracerProvider.getDelegate() : tracerProvider
  return [tracer, Otel.metrics.getMeterProvider()].flatMap((provider) => (isFlushable(provider) ? [provider] : []))
}

/**
 * Provides `telemetry` to `self` and registers, after `self` is built, a finalizer that runs
 * every flush `telemetry` registered. Finalizers run in reverse: the flush, then `self`'s
 * release (the pools close), then `telemetry`'s (the SDK shuts down).
 */
export const provide = <ROut, E, RIn, ROut2, E2, RIn2>(
  self: Layer.Layer<ROut, E, RIn>,
  telemetry: Layer.Layer<ROut2, E2, RIn2>
): Layer.Layer<ROut | ROut2, E | E2, RIn2 | Exclude<RIn, ROut2>> => {
  // Made for each call: a layer is shared by everything built with the same memo map.
  const flushes = Layer.effect(Current, Effect.sync(make))
  const flushOnClose = Layer.effectDiscard(
    Effect.flatMap(Current, (registered) =>
      registered === undefined ? Effect.void : Effect.addFinalizer(() => run(registered))
    )
  )
  return flushOnClose.pipe(Layer.provideMerge(self), Layer.provideMerge(telemetry), Layer.provide(flushes))
}
