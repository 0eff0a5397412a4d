/**
 * A server's log messages (`notifications/message`) in the effect logger, at the level that
 * matches theirs, tagged with the server.
 */
import type { LoggingMessageNotification } from "@modelcontextprotocol/sdk/types.js"
import * as Effect from "effect/Effect"
import type * as LogLevel from "effect/LogLevel"

/** The effect log level of each MCP (syslog) level. */
export const logLevels: Readonly<Record<LoggingMessageNotification["params"]["level"], LogLevel.Severity>> = {
  debug: "Debug",
  info: "Info",
  notice: "Info",
  warning: "Warn",
  error: "Error",
  critical: "Fatal",
  alert: "Fatal",
  emergency: "Fatal"
}

const text = (data: unknown): string => {
  if (typeof data === "string") return data
  try {
    return JSON.stringify(data) ?? String(data)
  } catch {
    return String(data)
  }
}

/** Logs one message of a server, its secrets removed. */
export const logServerMessage = (
  serverName: string,
  params: LoggingMessageNotification["params"],
  scrub: (text: string) => string
): Effect.Effect<void> =>
  Effect.logWithLevel(logLevels[params.level])(scrub(text(params.data))).pipe(
    Effect.annotateLogs({
      server: serverName,
      mcpLevel: params.level,
      ...(params.logger === undefined ? {} : { logger: params.logger })
    })
  )
