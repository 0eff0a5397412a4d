/**
 * The typed errors of mcp-pool. Every error carries the `serverName` it is about and a
 * `message` a person can read; Promise callers receive the same objects as rejections.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Predicate from "effect/Predicate"

/**
 * The server could not be reached: connecting failed, the transport failed, or the server
 * process exited.
 *
 * `requestSent` tells whether the failed request may have reached the server: when it is
 * `false` the call is safe to retry, when `true` the server may have executed it. `cause`
 * is a copy of what was thrown (name, message, code, stack, cause chain) with the server's
 * secrets replaced by `[REDACTED]`.
 *
 * @since 0.1.0
 * @category errors
 */
export class MCPConnectionError extends Data.TaggedError("MCPConnectionError")<{
  readonly serverName: string
  readonly reason: string
  readonly requestSent: boolean
  readonly cause?: unknown
  /** A stdio server that exited before it answered the handshake: its exit code (null when a signal ended it). */
  readonly exitCode?: number | null | undefined
  /** ... or the signal that ended it. */
  readonly signal?: string | null | undefined
  /** The last lines the server wrote to stderr before it failed (stdio), secrets removed. */
  readonly stderr?: ReadonlyArray<string> | undefined
}> {
  override get message(): string {
    return `MCP server "${this.serverName}": connection failed: ${this.reason}${this.processSummary()}`
  }
  /** How the server's process ended and what it last said, when the failure is a stdio server's. */
  private processSummary(): string {
    const ended =
      this.signal !== undefined && this.signal !== null
        ? `killed by ${this.signal}`
        : this.exitCode !== undefined && this.exitCode !== null
          ? `exited with code ${this.exitCode}`
          : undefined
    const stderr = this.stderr ?? []
    const said =
      stderr.length === 0 ? undefined : `last lines of its stderr:\n${stderr.map((line) => `  ${line}`).join("\n")}`
    const parts = [ended, said].filter((part) => part !== undefined)
    return parts.length === 0 ? "" : ` (${parts.join("; ")})`
  }
  /** Whether retrying on a fresh connection cannot run the request twice. */
  get isRetryable(): boolean {
    return !this.requestSent
  }
}

/**
 * No connection became free within `acquireTimeout`.
 *
 * @since 0.1.0
 * @category errors
 */
export class MCPPoolExhausted extends Data.TaggedError("MCPPoolExhausted")<{
  readonly serverName: string
  readonly acquireTimeoutMs: number
  readonly maxConnections: number
  /** Connections lent when the wait ended. */
  readonly inUse?: number | undefined
  /** Connections being opened when the wait ended. */
  readonly opening?: number | undefined
}> {
  override get message(): string {
    const state =
      this.inUse === undefined
        ? ""
        : `: ${this.inUse} in use${this.opening === undefined || this.opening === 0 ? "" : `, ${this.opening} being opened`}`
    return `MCP server "${this.serverName}": no connection became available within ${this.acquireTimeoutMs} ms (maxConnections ${this.maxConnections}${state})`
  }
}

/**
 * A health check found the pool unhealthy: a connection failed its ping, the pool has no
 * working connection, or its breaker is open. Raised by `MCPHealthMonitor.ensureHealthy` (a
 * readiness gate); a check that only reports (`checkNow`, the monitoring route) answers with
 * `healthy: false` instead.
 *
 * @since 0.1.0
 * @category errors
 */
export class MCPHealthCheckError extends Data.TaggedError("MCPHealthCheckError")<{
  readonly serverName: string
  /** Why the pool is not healthy, as the check's answer says. */
  readonly reason: string
  /** Connections the check pinged, and those that failed. */
  readonly checked: number
  readonly failed: number
}> {
  override get message(): string {
    return `MCP server "${this.serverName}": health check failed: ${this.reason}`
  }
}

/**
 * The pool's circuit breaker is open: the call failed at once without touching a
 * connection. `retryAfter` is when the breaker will admit a probe again.
 *
 * @since 0.1.0
 * @category errors
 */
export class MCPCircuitOpen extends Data.TaggedError("MCPCircuitOpen")<{
  readonly serverName: string
  readonly retryAfter: Date
}> {
  override get message(): string {
    return `MCP server "${this.serverName}": circuit breaker is open until ${this.retryAfter.toISOString()}`
  }
}

/**
 * The request did not complete within `requestTimeout`, or within the call's own `timeout` or
 * `maxTotalTimeout` when it passed them; `timeoutMs` is the limit that was exceeded.
 *
 * @since 0.1.0
 * @category errors
 */
export class MCPTimeout extends Data.TaggedError("MCPTimeout")<{
  readonly serverName: string
  readonly method: string
  readonly timeoutMs: number
}> {
  override get message(): string {
    return `MCP server "${this.serverName}": ${this.method} timed out after ${this.timeoutMs} ms`
  }
}

/**
 * The server answered the request with a JSON-RPC error. The connection is fine. The
 * server's secrets (env and header values, URL credentials) are replaced by `[REDACTED]` in
 * `reason` and, deeply, in `data`.
 *
 * @since 0.1.0
 * @category errors
 */
export class MCPRequestError extends Data.TaggedError("MCPRequestError")<{
  readonly serverName: string
  readonly method: string
  readonly code: number
  readonly reason: string
  readonly data?: unknown
}> {
  override get message(): string {
    return `MCP server "${this.serverName}": ${this.method} failed with JSON-RPC error ${this.code}: ${this.reason}`
  }
}

/**
 * A configuration value, file or environment variable is invalid. `source` names where
 * it came from (a file, an environment variable, or `configureServerPool`), `path` the
 * field, `value` the offending value as written and `rule` what it must satisfy.
 *
 * `value` never holds a secret: env and header values, URL credentials and query values,
 * and secret-looking arguments in it are `[REDACTED]`, in the field as in the message.
 *
 * `serverName` is set when the error is about one server, and undefined for the
 * defaults or a file that could not be read at all.
 *
 * @since 0.1.0
 * @category errors
 */
export class MCPConfigError extends Data.TaggedError("MCPConfigError")<{
  readonly serverName: string | undefined
  readonly source: string
  readonly path: string
  readonly value?: unknown
  readonly rule: string
}> {
  override get message(): string {
    const where = this.path === "" ? this.source : `${this.source} at ${this.path}`
    const server = this.serverName === undefined ? "" : ` (server "${this.serverName}")`
    const value = this.value === undefined ? "" : `: got ${formatValue(this.value)}`
    return `Invalid MCP pool configuration in ${where}${server}${value}: ${this.rule}`
  }
}

/**
 * No server of that name is configured.
 *
 * @since 0.1.0
 * @category errors
 */
export class MCPServerNotFound extends Data.TaggedError("MCPServerNotFound")<{
  readonly serverName: string
  readonly knownServers: ReadonlyArray<string>
}> {
  override get message(): string {
    const known = this.knownServers.length === 0 ? "none" : this.knownServers.map((n) => `"${n}"`).join(", ")
    return `MCP server "${this.serverName}" is not configured (configured servers: ${known})`
  }
}

/**
 * The manager (or the pool) was closed: the operation was refused, or the call was ended by
 * the close. Calls ended this way count as neither failures nor errors of the server.
 *
 * @since 0.1.0
 * @category errors
 */
export class MCPManagerClosed extends Data.TaggedError("MCPManagerClosed")<{
  readonly serverName: string
  /** What was refused or ended, for the message (`tools/call`, `configureServerPool`, ...). */
  readonly operation: string
}> {
  override get message(): string {
    const server = this.serverName === "" ? "" : ` (server "${this.serverName}")`
    return `MCP connection manager is closed${server}: ${this.operation} was refused or ended`
  }
}

/**
 * The caller gave up on the call: its `AbortSignal` aborted, or its fiber was interrupted.
 * The server is not to blame; the call is never counted against it.
 *
 * @since 0.1.0
 * @category errors
 */
export class MCPAborted extends Data.TaggedError("MCPAborted")<{
  readonly serverName: string
  readonly method: string
  /** The signal's reason, when the caller gave one (a string description). */
  readonly reason: string
}> {
  override get message(): string {
    return `MCP server "${this.serverName}": ${this.method} was aborted by the caller: ${this.reason}`
  }
}

/**
 * A query to the monitoring operations had bad parameters (for example an alert severity
 * that is not `info`, `warning` or `critical`); the monitoring API answers it with 400.
 * `parameter`, `value` and `rule` are those of the first bad parameter; `problems` lists
 * every one, and the message names them all.
 *
 * @since 0.1.0
 * @category errors
 */
export class MCPInvalidQuery extends Data.TaggedError("MCPInvalidQuery")<{
  readonly serverName?: string | undefined
  readonly parameter: string
  readonly value: unknown
  readonly rule: string
  readonly problems?:
    ReadonlyArray<{ readonly parameter: string; readonly value: unknown; readonly rule: string }> | undefined
}> {
  override get message(): string {
    const problems = this.problems ?? [{ parameter: this.parameter, value: this.value, rule: this.rule }]
    const each = problems.map((p) => `"${p.parameter}" (got ${formatValue(p.value)}): ${p.rule}`)
    return `Invalid query parameter${each.length === 1 ? "" : "s"} ${each.join("; ")}`
  }
}

/**
 * Any error a pooled call can fail with.
 *
 * @since 0.1.0
 * @category errors
 */
export type MCPCallError =
  MCPConnectionError | MCPPoolExhausted | MCPCircuitOpen | MCPTimeout | MCPRequestError | MCPManagerClosed | MCPAborted

/**
 * Every error of this module.
 *
 * @since 0.1.0
 * @category errors
 */
export type MCPPoolError = MCPCallError | MCPHealthCheckError | MCPConfigError | MCPServerNotFound | MCPInvalidQuery

const tags: ReadonlySet<string> = new Set([
  "MCPConnectionError",
  "MCPPoolExhausted",
  "MCPHealthCheckError",
  "MCPCircuitOpen",
  "MCPTimeout",
  "MCPRequestError",
  "MCPConfigError",
  "MCPServerNotFound",
  "MCPInvalidQuery",
  "MCPManagerClosed",
  "MCPAborted"
])

/**
 * Whether a value is one of the errors of this module.
 *
 * @since 0.1.0
 * @category guards
 */
export const isMCPPoolError = (u: unknown): u is MCPPoolError =>
  Predicate.hasProperty(u, "_tag") && typeof u._tag === "string" && tags.has(u._tag)

const formatValue = (value: unknown): string => {
  if (typeof value === "string") return JSON.stringify(value)
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return String(value)
  }
}
