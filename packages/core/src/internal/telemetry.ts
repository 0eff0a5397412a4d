/**
 * The pool's side of `Telemetry` for one request: its bookkeeping, its CLIENT span and the
 * spans of waiting for a connection and of a lease (metric series are in `poolMetrics`).
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import type * as Scope from "effect/Scope"
import * as Tracer from "effect/Tracer"
import type { Permit } from "./circuitBreaker.js"
import {
  ACQUIRE_SPAN_NAME,
  LEASE_SPAN_NAME,
  Attribute,
  CurrentPropagator,
  type Propagator,
  TOOL_ERROR
} from "../Telemetry.js"
import { errorType, isToolError, type PoolTelemetry, targetAttribute } from "./poolMetrics.js"

export { breakerStateValue, Histogram, PoolTelemetry, type PoolSources } from "./poolMetrics.js"

const NO_STACK = { captureStackTrace: false } as const

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

/** Whether `begin` would find nothing to do in this fiber: no span to make, no trace context to send. */
export const isUntraced = (fiber: Fiber.Fiber<unknown, unknown>): boolean => {
  const cache = fiber.cache
  if (!cache.tracerEnabled) return true
  const tracer = cache.tracer
  return (tracer === undefined || tracer === Tracer.nativeTracer) && cache.span === undefined
}

/**
 * How a caller without a fiber traces its requests (the Promise API on a traced manager): its
 * spans are made as a fiber of its context makes them, each by a fiber that ends at once.
 */
export interface Tracing {
  /** Makes a span as `Effect.makeSpan` does in a fiber of the caller's context. */
  readonly makeSpan: (name: string, options: Tracer.SpanOptionsNoTrace) => Tracer.Span
  /** What writes a span's trace context into a request's `_meta`. */
  readonly propagator: Propagator
  /** The clock the spans end on. */
  readonly clock: Clock.Clock
}

/**
 * The tracing of the fibers `runFork` starts, read from one of them: `undefined` when a request
 * of theirs makes no span, or needs its fiber for it (the caller has a span of its own: its
 * trace context, and the tracer's context hook under it, live in the fiber).
 */
export const tracingOf = (
  fiber: Fiber.Fiber<unknown, unknown>,
  runFork: <A>(effect: Effect.Effect<A>) => Fiber.Fiber<A>
): Tracing | undefined => {
  if (!tracing(fiber) || fiber.cache.span !== undefined) return undefined
  return {
    makeSpan: (name, options) => {
      const made = runFork(Effect.makeSpan(name, options)).pollUnsafe()
      if (made === undefined || made._tag === "Failure") throw new Error(`the span "${name}" was not made at once`)
      return made.value
    },
    propagator: fiber.getRef(CurrentPropagator),
    clock: fiber.getRef(Clock.Clock)
  }
}

/** Opens a request's CLIENT span for a caller without a fiber (as `withSpan` does in a fiber). */
export const openSpan = (call: Call, telemetry: PoolTelemetry, tracing: Tracing): void => {
  const { name, options } = clientSpan(call, telemetry)
  const span = tracing.makeSpan(name, options)
  call.span = span
  call.clock = tracing.clock
  call.propagator = tracing.propagator
  call.meta = injectInto(tracing.propagator, span)
}

/** Opens the `mcp_pool.acquire` span of a borrower without a fiber that joins the line; `leased` ends it. */
export const openAcquireSpan = (call: Call, tracing: Tracing): void => {
  const parent = call.span
  if (parent !== undefined) call.acquireSpan = tracing.makeSpan(ACQUIRE_SPAN_NAME, { parent, kind: "internal" })
}

/** Ends the `mcp_pool.acquire` span of a borrower without a fiber whose wait failed, with `exit`. */
export const closeAcquireSpan = (call: Call, exit: Exit.Exit<unknown, unknown>): void => {
  const acquire = call.acquireSpan
  if (acquire === undefined) return
  call.acquireSpan = undefined
  endSpan(call, acquire, exit)
}

/** Ends what a request without a fiber still has open: its wait's span, then its own, with `exit`. */
export const closeSpans = (call: Call, exit: Exit.Exit<unknown, unknown>): void => {
  closeAcquireSpan(call, exit)
  if (call.span !== undefined) endSpan(call, call.span, exit)
}

/** What starts a Promise caller's fibers (`Effect.runForkWith(context)`). */
type RunFork = <A, E>(effect: Effect.Effect<A, E>) => Fiber.Fiber<A, E>

export interface PromiseTracing {
  /** Whether plain requests may skip the fiber (see `MCPConnectionPool.requestNow`). */
  readonly fiberless: boolean
  readonly tracing: Tracing | undefined
}

const tracingBy = new WeakMap<RunFork, PromiseTracing>()

/** How the requests of fibers started by `runFork` are traced; read once per `runFork`. */
export const promiseTracing = (runFork: RunFork): PromiseTracing => {
  let known = tracingBy.get(runFork)
  if (known === undefined) {
    const exit = runFork(
      Effect.withFiber((fiber) => {
        const tracing = tracingOf(fiber, runFork)
        return Effect.succeed({ fiberless: tracing !== undefined || isUntraced(fiber), tracing })
      })
    ).pollUnsafe()
    known = exit !== undefined && Exit.isSuccess(exit) ? exit.value : { fiberless: false, tracing: undefined }
    tracingBy.set(runFork, known)
  }
  return known
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

/** The CLIENT span of a request: `{method} {target}`, with the request's attributes. */
const clientSpan = (call: Call, telemetry: PoolTelemetry) => {
  const attributes: Record<string, unknown> = {
    [Attribute.methodName]: call.method,
    [Attribute.networkTransport]: telemetry.transport,
    [Attribute.poolName]: telemetry.serverName,
    [Attribute.serverName]: telemetry.serverName
  }
  const key = targetAttribute(call.method)
  if (key !== undefined && call.target !== undefined) attributes[key] = call.target
  const name = call.target === undefined ? call.method : `${call.method} ${call.target}`
  return { name, options: { kind: "client", attributes } as const }
}

/** Runs a request under its CLIENT span, `{method} {target}`. */
export const withSpan = <A, E>(call: Call, telemetry: PoolTelemetry, effect: Effect.Effect<A, E>) => {
  const { name, options } = clientSpan(call, telemetry)
  // A tracer with a context hook (@effect/opentelemetry's makes the span the active
  // OpenTelemetry context) runs it on every step of a fiber that has a span, at a cost of
  // several allocations per step. The pool's own steps need no active context: they run
  // with the same tracer minus the hook and without the request's span as parent (the
  // acquire span names its parent). Only the SDK call runs under both (`withinSpan`).
  const hooked = call.hookedTracer
  return Effect.useSpan(name, options, (span) => {
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
