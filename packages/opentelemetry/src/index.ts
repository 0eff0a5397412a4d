/**
 * @mcp-pool/opentelemetry: the pools' metrics and spans exported to OpenTelemetry, over
 * `@effect/opentelemetry`, for Effect layers and for the Promise API.
 *
 * @since 0.1.0
 */
export * as Errors from "./Errors.js"
export * as Metrics from "./Metrics.js"
export * as NodeSdk from "./NodeSdk.js"
export * as Propagation from "./Propagation.js"
export * as PromiseApi from "./PromiseApi.js"

export { OtelSetupError } from "./Errors.js"
export { createInstrumentedMcpConnectionManager, instrument as instrumentMcpConnectionManager } from "./PromiseApi.js"
