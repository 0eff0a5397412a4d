/**
 * W3C trace context for pooled requests through the OpenTelemetry API: `traceparent`,
 * `tracestate` and `baggage` in `params._meta`, by the global or a given propagator.
 *
 * @since 0.1.0
 */
import * as Telemetry from "@mcp-pool/core/Telemetry"
import * as Otel from "@opentelemetry/api"
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from "@opentelemetry/core"
import type * as Layer from "effect/Layer"
import type { AnySpan } from "effect/Tracer"

const isOtelSpan = (u: unknown): u is Otel.Span =>
  typeof u === "object" && u !== null && "spanContext" in u && typeof u.spanContext === "function"

/**
 * The OpenTelemetry context holding `span`: for a span made by `@effect/opentelemetry`'s
 * tracer, the SDK span it wraps (with its `tracestate`); else a span context of its ids.
 */
const contextOf = (span: AnySpan): Otel.Context => {
  const active = Otel.context.active()
  const wrapped: unknown = "span" in span ? span.span : undefined
  if (isOtelSpan(wrapped)) return Otel.trace.setSpan(active, wrapped)
  return Otel.trace.setSpanContext(active, {
    traceId: span.traceId,
    spanId: span.spanId,
    traceFlags: span.sampled ? Otel.TraceFlags.SAMPLED : Otel.TraceFlags.NONE,
    isRemote: span._tag === "ExternalSpan"
  })
}

const setter: Otel.TextMapSetter<Record<string, string>> = {
  set: (carrier, key, value) => {
    carrier[key] = value
  }
}

/**
 * A core `Telemetry.Propagator` that injects with an OpenTelemetry `TextMapPropagator`
 * (the global one, as set by `@opentelemetry/sdk-node`, when none is given). The baggage
 * is the one of the active OpenTelemetry context. When the propagator writes no
 * `traceparent` (the global one is a no-op until an SDK registers one), core's W3C
 * `traceparent` is used.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (propagator?: Otel.TextMapPropagator): Telemetry.Propagator => ({
  inject: (span, carrier) => {
    ;(propagator ?? Otel.propagation).inject(contextOf(span), carrier, setter)
    if (carrier["traceparent"] === undefined) Telemetry.w3cPropagator.inject(span, carrier)
  }
})

/**
 * The W3C trace context and baggage propagators, without touching the global one.
 *
 * @since 0.1.0
 * @category constructors
 */
export const w3c: Otel.TextMapPropagator = new CompositePropagator({
  propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()]
})

/**
 * Pooled requests inject with the global OpenTelemetry propagator.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerGlobal: Layer.Layer<never> = Telemetry.layerPropagator(make())

/**
 * Pooled requests inject W3C trace context and baggage (not the global propagator).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerW3C: Layer.Layer<never> = Telemetry.layerPropagator(make(w3c))
