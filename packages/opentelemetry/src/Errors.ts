/**
 * The error of setting up OpenTelemetry export: a bad `OTEL_*` value, or an exporter package
 * that the configuration asks for but that is not installed.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"

/**
 * OpenTelemetry export could not be set up.
 *
 * @since 0.1.0
 * @category errors
 */
export class OtelSetupError extends Data.TaggedError("OtelSetupError")<{
  /** The environment variable or option at fault. */
  readonly variable: string
  readonly value: string
  readonly reason: string
  readonly cause?: unknown
}> {
  override get message(): string {
    return `OpenTelemetry set-up: ${this.variable}=${JSON.stringify(this.value)}: ${this.reason}`
  }
}
