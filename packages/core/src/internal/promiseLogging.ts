/**
 * The Promise API's logging options as effect layers: a minimum level, and a callback that
 * receives every line instead of the console.
 */
import * as Cause from "effect/Cause"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import type * as LogLevel from "effect/LogLevel"
import * as References from "effect/References"
import type { PromiseLogLevel, LogEntry } from "../PromiseApi.js"

const effectLevels: Record<PromiseLogLevel, LogLevel.LogLevel> = {
  none: "None",
  error: "Error",
  warning: "Warn",
  info: "Info",
  debug: "Debug",
  trace: "Trace"
}

const entryLevels: Record<LogLevel.LogLevel, LogEntry["level"]> = {
  All: "trace",
  Trace: "trace",
  Debug: "debug",
  Info: "info",
  Warn: "warning",
  Error: "error",
  Fatal: "fatal",
  None: "error"
}

const text = (message: unknown): string =>
  Array.isArray(message)
    ? message.map((part) => (typeof part === "string" ? part : String(part))).join(" ")
    : String(message)

/** A logger that hands each line to `listener` (a listener that throws is ignored). */
const callbackLogger = (listener: (entry: LogEntry) => void) =>
  Logger.make((options) => {
    const entry: LogEntry = {
      level: entryLevels[options.logLevel],
      message: text(options.message),
      annotations: options.fiber.getRef(References.CurrentLogAnnotations),
      date: options.date,
      ...(options.cause.reasons.length === 0 ? {} : { cause: Cause.pretty(options.cause) })
    }
    try {
      listener(entry)
    } catch {
      // A logging callback must not break the pool.
    }
  })

/** The layer of the Promise API's logging options (nothing when neither is given). */
export const layer = (options: {
  readonly logLevel?: PromiseLogLevel | undefined
  readonly logger?: ((entry: LogEntry) => void) | undefined
}): Layer.Layer<never> => {
  const level =
    options.logLevel === undefined
      ? Layer.empty
      : Layer.succeed(References.MinimumLogLevel, effectLevels[options.logLevel])
  const logger = options.logger === undefined ? Layer.empty : Logger.layer([callbackLogger(options.logger)])
  return Layer.merge(level, logger)
}
