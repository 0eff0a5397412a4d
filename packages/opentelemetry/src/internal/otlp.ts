/**
 * OTLP exporters made from the standard `OTEL_EXPORTER_OTLP_*` variables, read through effect
 * `Config`: protocol, endpoint, headers, timeout and compression, per signal or for both.
 */
import type { PushMetricExporter } from "@opentelemetry/sdk-metrics"
import type { SpanExporter } from "@opentelemetry/sdk-trace-base"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/Config"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { createRequire } from "node:module"
import { OtelSetupError } from "../Errors.js"

/**
 * The OTLP transports of the specification. `http/protobuf` is its default (and
 * `@opentelemetry/sdk-node`'s).
 */
export type Protocol = "http/protobuf" | "http/json" | "grpc"

/** The protocols, the default first. */
export const protocols: ReadonlyArray<Protocol> = ["http/protobuf", "http/json", "grpc"]

/** A signal with an OTLP exporter here. */
export type Signal = "traces" | "metrics"

/** A variable that was set, with its value (trimmed). */
export interface Setting {
  readonly variable: string
  readonly value: string
}

/**
 * The first of `names` that is set to something other than blanks (the specification treats
 * an empty value as unset).
 */
export const first = (...names: ReadonlyArray<string>): Effect.Effect<Setting | undefined, ConfigError.ConfigError> =>
  Effect.gen(function* () {
    for (const name of names) {
      const value = yield* Config.option(Config.String(name))
      if (Option.isSome(value) && value.value.trim() !== "") return { variable: name, value: value.value.trim() }
    }
    return undefined
  })

/** What one signal's OTLP exporter is configured with. */
export interface Settings {
  readonly signal: Signal
  readonly protocol: Protocol
  /** The variable that chose the protocol; `undefined` when it is the default. */
  readonly protocolVariable: string | undefined
  readonly url: string
  readonly headers: Readonly<Record<string, string>>
  readonly timeoutMillis: number
  readonly compression: "gzip" | "none"
}

const hidden = "(not shown: headers may hold credentials)"

/** `key1=value1,key2=value2`, keys and values URL-encoded (the W3C baggage format). */
const parseHeaders = (setting: Setting | undefined): Effect.Effect<Record<string, string>, OtelSetupError> =>
  Effect.suspend(() => {
    const headers: Record<string, string> = {}
    if (setting === undefined) return Effect.succeed(headers)
    const entries = setting.value.split(",")
    for (const [index, entry] of entries.entries()) {
      if (entry.trim() === "") continue
      const separator = entry.indexOf("=")
      const fail = (what: string) =>
        Effect.fail(
          new OtelSetupError({
            variable: setting.variable,
            value: hidden,
            reason: `entry ${index + 1} ${what}; expected key=value pairs separated by commas, URL-encoded`
          })
        )
      if (separator <= 0) return fail("is not key=value")
      try {
        const key = decodeURIComponent(entry.slice(0, separator).trim())
        const value = decodeURIComponent(entry.slice(separator + 1).trim())
        if (key === "") return fail("has an empty key")
        headers[key.toLowerCase()] = value
      } catch {
        return fail("is not valid URL encoding")
      }
    }
    return Effect.succeed(headers)
  })

const hasScheme = (url: string) => /^[a-z][a-z0-9+.-]*:\/\//i.test(url)

const httpUrl = (setting: Setting, url: string): Effect.Effect<string, OtelSetupError> => {
  let parsed: URL | undefined
  try {
    parsed = new URL(url)
  } catch {
    parsed = undefined
  }
  return parsed !== undefined && (parsed.protocol === "http:" || parsed.protocol === "https:")
    ? Effect.succeed(parsed.href)
    : Effect.fail(
        new OtelSetupError({
          variable: setting.variable,
          value: setting.value,
          reason: "expected an http:// or https:// URL"
        })
      )
}

/**
 * The exporter's URL. Over HTTP, `OTEL_EXPORTER_OTLP_ENDPOINT` is a base to which
 * `v1/traces` or `v1/metrics` is appended, and the per-signal endpoint is used as it is. Over
 * gRPC both are used as they are; one without a scheme is `https://` unless
 * `OTEL_EXPORTER_OTLP_{SIGNAL}_INSECURE` / `OTEL_EXPORTER_OTLP_INSECURE` is `true`.
 */
const endpoint = (signal: Signal, protocol: Protocol) =>
  Effect.gen(function* () {
    const SIGNAL = signal.toUpperCase()
    const specific = yield* first(`OTEL_EXPORTER_OTLP_${SIGNAL}_ENDPOINT`)
    const generic = yield* first("OTEL_EXPORTER_OTLP_ENDPOINT")
    if (protocol === "grpc") {
      const setting = specific ?? generic ?? { variable: "OTEL_EXPORTER_OTLP_ENDPOINT", value: "http://localhost:4317" }
      if (hasScheme(setting.value)) return yield* httpUrl(setting, setting.value)
      const insecure = yield* first(`OTEL_EXPORTER_OTLP_${SIGNAL}_INSECURE`, "OTEL_EXPORTER_OTLP_INSECURE")
      const scheme = insecure?.value.toLowerCase() === "true" ? "http://" : "https://"
      return yield* httpUrl(setting, scheme + setting.value)
    }
    if (specific !== undefined) return yield* httpUrl(specific, specific.value)
    const base = generic ?? { variable: "OTEL_EXPORTER_OTLP_ENDPOINT", value: "http://localhost:4318" }
    const checked = yield* httpUrl(base, base.value)
    return yield* httpUrl(base, `${checked.endsWith("/") ? checked : `${checked}/`}v1/${signal}`)
  })

/**
 * Reads the settings of one signal's OTLP exporter; a per-signal variable
 * (`OTEL_EXPORTER_OTLP_TRACES_*`, `OTEL_EXPORTER_OTLP_METRICS_*`) wins over the general one.
 * An unknown protocol or compression, a bad URL, timeout or header list fails with
 * `OtelSetupError` naming the variable.
 */
export const settings = (signal: Signal): Effect.Effect<Settings, OtelSetupError | ConfigError.ConfigError> =>
  Effect.gen(function* () {
    const SIGNAL = signal.toUpperCase()
    const protocolSetting = yield* first(`OTEL_EXPORTER_OTLP_${SIGNAL}_PROTOCOL`, "OTEL_EXPORTER_OTLP_PROTOCOL")
    const protocol = protocols.find((p) => p === protocolSetting?.value.toLowerCase())
    if (protocolSetting !== undefined && protocol === undefined) {
      return yield* new OtelSetupError({
        variable: protocolSetting.variable,
        value: protocolSetting.value,
        reason: `unknown OTLP protocol; use ${protocols.join(", ")} (default http/protobuf)`
      })
    }
    const chosen = protocol ?? "http/protobuf"
    const url = yield* endpoint(signal, chosen)
    const headers = {
      ...(yield* parseHeaders(yield* first("OTEL_EXPORTER_OTLP_HEADERS"))),
      ...(yield* parseHeaders(yield* first(`OTEL_EXPORTER_OTLP_${SIGNAL}_HEADERS`)))
    }
    const timeout = yield* first(`OTEL_EXPORTER_OTLP_${SIGNAL}_TIMEOUT`, "OTEL_EXPORTER_OTLP_TIMEOUT")
    const timeoutMillis = timeout === undefined ? 10_000 : Number(timeout.value)
    if (timeout !== undefined && !(Number.isFinite(timeoutMillis) && timeoutMillis > 0)) {
      return yield* new OtelSetupError({
        variable: timeout.variable,
        value: timeout.value,
        reason: "expected a number of milliseconds greater than 0"
      })
    }
    const compressionSetting = yield* first(
      `OTEL_EXPORTER_OTLP_${SIGNAL}_COMPRESSION`,
      "OTEL_EXPORTER_OTLP_COMPRESSION"
    )
    const compression = compressionSetting === undefined ? "none" : compressionSetting.value.toLowerCase()
    if (compressionSetting !== undefined && compression !== "gzip" && compression !== "none") {
      return yield* new OtelSetupError({
        variable: compressionSetting.variable,
        value: compressionSetting.value,
        reason: "expected gzip or none"
      })
    }
    return {
      signal,
      protocol: chosen,
      protocolVariable: protocolSetting?.variable,
      url,
      headers,
      timeoutMillis,
      compression: compression === "gzip" ? "gzip" : "none"
    }
  })

/** Loads an optional exporter package, or fails naming it. */
export const load = <A>(
  setting: Setting,
  packageName: string,
  importer: () => Promise<A>,
  hint = ""
): Effect.Effect<A, OtelSetupError> =>
  Effect.tryPromise({
    try: importer,
    catch: (cause) =>
      new OtelSetupError({
        variable: setting.variable,
        value: setting.value,
        reason: `needs the package ${packageName}; install it${hint}`,
        cause
      })
  })

const packages = {
  traces: {
    "http/protobuf": "@opentelemetry/exporter-trace-otlp-proto",
    "http/json": "@opentelemetry/exporter-trace-otlp-http",
    grpc: "@opentelemetry/exporter-trace-otlp-grpc"
  },
  metrics: {
    "http/protobuf": "@opentelemetry/exporter-metrics-otlp-proto",
    "http/json": "@opentelemetry/exporter-metrics-otlp-http",
    grpc: "@opentelemetry/exporter-metrics-otlp-grpc"
  }
} as const

/** The package of one signal's OTLP exporter over one protocol. */
export const packageOf = (signal: Signal, protocol: Protocol): string => packages[signal][protocol]

const loadFor = <A>(config: Settings, importer: () => Promise<A>) =>
  load(
    {
      variable: config.protocolVariable ?? "OTEL_EXPORTER_OTLP_PROTOCOL",
      value: config.protocol
    },
    packageOf(config.signal, config.protocol),
    importer,
    config.protocolVariable === undefined
      ? ` (http/protobuf is the specification's default protocol; set OTEL_EXPORTER_OTLP_PROTOCOL=http/json or grpc to use another exporter package)`
      : ""
  )

/** The options every OTLP exporter over HTTP takes. */
const httpOptions = (config: Settings) => ({
  url: config.url,
  headers: { ...config.headers },
  timeoutMillis: config.timeoutMillis,
  ...compressionOption(config)
})

/**
 * `compression` is typed as the exporters' `CompressionAlgorithm` enum, which their packages
 * do not export; its values are the strings `"gzip"` and `"none"`.
 */
const compressionOption = (config: Settings): { compression?: CompressionAlgorithm } =>
  config.compression === "gzip" ? { compression: gzip } : {}

type CompressionAlgorithm = NonNullable<
  NonNullable<
    ConstructorParameters<typeof import("@opentelemetry/exporter-trace-otlp-http").OTLPTraceExporter>[0]
  >["compression"]
>
const gzip = "gzip" as CompressionAlgorithm

type GrpcMetadata = NonNullable<
  NonNullable<
    ConstructorParameters<typeof import("@opentelemetry/exporter-trace-otlp-grpc").OTLPTraceExporter>[0]
  >["metadata"]
>

const isMetadata = (u: unknown): u is GrpcMetadata =>
  typeof u === "object" && u !== null && "set" in u && typeof u.set === "function" && "getMap" in u

/**
 * gRPC metadata (`@grpc/grpc-js`'s `Metadata`) holding the headers, made by the
 * `@opentelemetry/otlp-grpc-exporter-base` that the exporter package itself uses.
 */
const grpcOptions = (config: Settings, exporterPackage: string) =>
  Effect.try({
    try: () => {
      const metadata = (() => {
        if (Object.keys(config.headers).length === 0) return {}
        const exporterEntry = createRequire(import.meta.url).resolve(exporterPackage)
        const base: unknown = createRequire(exporterEntry)("@opentelemetry/otlp-grpc-exporter-base")
        const made: unknown =
          typeof base === "object" &&
          base !== null &&
          "createEmptyMetadata" in base &&
          typeof base.createEmptyMetadata === "function"
            ? base.createEmptyMetadata()
            : undefined
        if (!isMetadata(made)) throw new Error("@opentelemetry/otlp-grpc-exporter-base has no createEmptyMetadata()")
        for (const [key, value] of Object.entries(config.headers)) made.set(key, value)
        return { metadata: made }
      })()
      return { url: config.url, timeoutMillis: config.timeoutMillis, ...compressionOption(config), ...metadata }
    },
    catch: (cause) =>
      new OtelSetupError({
        variable: `OTEL_EXPORTER_OTLP_${config.signal.toUpperCase()}_HEADERS`,
        value: hidden,
        reason: `the headers could not be made into gRPC metadata: ${String(cause)}`,
        cause
      })
  })

/** The span exporter of the settings' protocol (its package loaded now). */
export const spanExporter = (
  config: Settings
): Effect.Effect<() => Effect.Effect<SpanExporter, OtelSetupError>, OtelSetupError> => {
  switch (config.protocol) {
    case "http/protobuf":
      return Effect.map(
        loadFor(config, () => import("@opentelemetry/exporter-trace-otlp-proto")),
        (module) => () => Effect.sync((): SpanExporter => new module.OTLPTraceExporter(httpOptions(config)))
      )
    case "http/json":
      return Effect.map(
        loadFor(config, () => import("@opentelemetry/exporter-trace-otlp-http")),
        (module) => () => Effect.sync((): SpanExporter => new module.OTLPTraceExporter(httpOptions(config)))
      )
    case "grpc":
      return Effect.map(
        loadFor(config, () => import("@opentelemetry/exporter-trace-otlp-grpc")),
        (module) => () =>
          Effect.map(
            grpcOptions(config, packageOf("traces", "grpc")),
            (options): SpanExporter => new module.OTLPTraceExporter(options)
          )
      )
  }
}

/** The metric exporter of the settings' protocol (its package loaded now). */
export const metricExporter = (
  config: Settings
): Effect.Effect<() => Effect.Effect<PushMetricExporter, OtelSetupError>, OtelSetupError> => {
  switch (config.protocol) {
    case "http/protobuf":
      return Effect.map(
        loadFor(config, () => import("@opentelemetry/exporter-metrics-otlp-proto")),
        (module) => () => Effect.sync((): PushMetricExporter => new module.OTLPMetricExporter(httpOptions(config)))
      )
    case "http/json":
      return Effect.map(
        loadFor(config, () => import("@opentelemetry/exporter-metrics-otlp-http")),
        (module) => () => Effect.sync((): PushMetricExporter => new module.OTLPMetricExporter(httpOptions(config)))
      )
    case "grpc":
      return Effect.map(
        loadFor(config, () => import("@opentelemetry/exporter-metrics-otlp-grpc")),
        (module) => () =>
          Effect.map(
            grpcOptions(config, packageOf("metrics", "grpc")),
            (options): PushMetricExporter => new module.OTLPMetricExporter(options)
          )
      )
  }
}
