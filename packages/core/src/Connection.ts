/**
 * One live MCP connection: an SDK `Client` and its transport as a scoped resource, opened
 * under `connectionTimeout` and closed (with its whole process group, for stdio) on release.
 *
 * @since 0.1.0
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { SSEClientTransport, SseError } from "@modelcontextprotocol/sdk/client/sse.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { MCPConnectionError } from "./Errors.js"
import { describeCause, tagSendFailures } from "./internal/classify.js"
import { scrubCause } from "./internal/scrub.js"
import { ProcessGroupStdioTransport } from "./internal/stdioTransport.js"
import { clientInfo } from "./internal/version.js"
import { connectionTarget, type ServerConfig, scrubber } from "./ServerConfig.js"

/**
 * How a connection reaches its server.
 *
 * @since 0.1.0
 * @category models
 */
export type TransportKind = ServerConfig["transport"]

/**
 * A live connection. The bookkeeping fields are updated by the pool that owns it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Connection {
  /** Unique within the process, increasing. */
  readonly id: number
  readonly serverName: string
  readonly transport: TransportKind
  /** The SDK client; use it only while the connection is lent to you. */
  readonly client: Client
  /** The server's process id (stdio only). */
  readonly pid: number | undefined
  /** The Streamable HTTP session id, when the server assigned one. */
  readonly sessionId: string | undefined
  /** Epoch milliseconds at which the connection finished its handshake. */
  readonly createdAt: number
  /** Epoch milliseconds of the end of the last request, or `createdAt`. */
  lastUsedAt: number
  /** How many times the connection was lent. */
  leases: number
  /** Requests running on it now. */
  inFlight: number
  /** Whether the connection was opened because a borrower was waiting (its first lease is a pool miss). */
  openedOnDemand: boolean
  /** Set once the transport closed, the process exited or a request proved the session gone. */
  deadReason: string | undefined
  /** When {@link renewRequestMaps} last ran, in `performance.now()` milliseconds. */
  requestMapsRenewedAt: number
}

/**
 * Options of {@link make}.
 *
 * @since 0.1.0
 * @category models
 */
export interface MakeOptions {
  readonly server: ServerConfig
  readonly connectionTimeoutMs: number
  /** Time between SIGTERM and SIGKILL of a stdio server's process group. */
  readonly shutdownGracePeriodMs: number
  /** Called once when the connection dies on its own (not when it is released). */
  readonly onDead?: ((connection: Connection, reason: string) => void) | undefined
}

let nextId = 1

/**
 * Opens a connection: starts the transport (spawning the server for stdio), runs the MCP
 * handshake under `connectionTimeoutMs`, and closes everything when the scope closes.
 * A failure to connect ends any process it started before failing.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: MakeOptions): Effect.Effect<Connection, MCPConnectionError, Scope.Scope> =>
  Effect.contextWith((context: Context.Context<never>) => {
    const server = options.server
    const id = nextId++
    const scrub = scrubber(server)
    const logStderr = (line: string) => {
      Effect.runForkWith(context)(
        Effect.logDebug(scrub(line)).pipe(
          Effect.annotateLogs({ server: server.name, connection: id, stream: "stderr" })
        )
      )
    }
    // What the SDK or fetch threw may quote a secret: the error keeps a scrubbed copy of it.
    const failure = (reason: string, cause?: unknown) =>
      new MCPConnectionError({
        serverName: server.name,
        reason: scrub(reason),
        requestSent: false,
        cause: cause === undefined ? undefined : scrubCause(cause, scrub)
      })

    return Effect.acquireRelease(
      Effect.sync(() => {
        const transport = makeTransport(server, logStderr, options.shutdownGracePeriodMs)
        // The process-group transport tags its own send failures.
        if (!(transport instanceof ProcessGroupStdioTransport)) tagSendFailures(transport)
        const client = new Client(clientInfo, { capabilities: {} })
        const resource: Resource = { transport, client, closed: false }
        return resource
      }),
      (resource) => close(resource)
    ).pipe(
      Effect.flatMap((resource) => {
        const { client, transport } = resource
        const connect = Effect.tryPromise({
          try: (signal) => client.connect(transport, { timeout: options.connectionTimeoutMs, signal }),
          catch: (cause) => failure(`could not connect: ${describeCause(cause)}`, cause)
        }).pipe(
          Effect.timeoutOrElse({
            duration: options.connectionTimeoutMs,
            orElse: () =>
              Effect.fail(failure(`no answer to the MCP handshake within ${options.connectionTimeoutMs} ms`))
          })
        )
        return Effect.map(connect, (): Connection => {
          const now = Date.now()
          const connection: Connection = {
            id,
            serverName: server.name,
            transport: server.transport,
            client,
            pid: transport instanceof ProcessGroupStdioTransport ? transport.pid : undefined,
            sessionId: transport.sessionId,
            createdAt: now,
            lastUsedAt: now,
            leases: 0,
            inFlight: 0,
            openedOnDemand: false,
            deadReason: undefined,
            requestMapsRenewedAt: performance.now()
          }
          closers.set(connection, resource)
          client.onclose = () => {
            if (resource.closed) return
            markDead(connection, "the connection closed (server process exited or transport failed)")
            options.onDead?.(connection, connection.deadReason ?? "closed")
          }
          client.onerror = (error) => {
            if (resource.closed) return
            // A legacy SSE stream that broke would reconnect on its own into a new session that
            // never had the MCP handshake: the connection is dead, and is closed by its pool.
            if (error instanceof SseError && isAlive(connection)) {
              markDead(connection, `the SSE event stream broke: ${describeCause(error)}`)
              options.onDead?.(connection, connection.deadReason ?? "the SSE event stream broke")
            }
            Effect.runForkWith(context)(
              Effect.logDebug(scrub(`transport error: ${describeCause(error)}`)).pipe(
                Effect.annotateLogs({ server: server.name, connection: id })
              )
            )
          }
          return connection
        })
      }),
      Effect.annotateLogs({ server: server.name })
    )
  })

/**
 * The maps in which the SDK client keeps what it knows of each request in flight: every
 * request adds an entry to each and its answer removes it.
 */
const REQUEST_MAPS = ["_responseHandlers", "_progressHandlers", "_timeoutInfo"] as const

/**
 * Gives the connection's SDK client fresh copies of the maps that hold its requests in flight
 * (same entries, so it is safe at any time; the SDK itself replaces one of them when it closes).
 *
 * **Why**: a client that has sat idle while the process was busy (a pooled connection between
 * bursts) later makes every scavenge under load promote megabytes of answered requests'
 * objects; fresh copies of these maps make that stop. (Most likely V8 rebuilds a tenured
 * map's table in the old generation, and a discarded table keeps its entries alive until a
 * full collection.) The pool renews them at most every
 * {@link REQUEST_MAPS_RENEWAL_MS} while a connection is used; a field the SDK no longer has
 * is left alone.
 *
 * @since 0.1.0
 * @category combinators
 */
export const renewRequestMaps = (connection: Connection, now: number): void => {
  connection.requestMapsRenewedAt = now
  const client: object = connection.client
  for (const key of REQUEST_MAPS) {
    const current: unknown = Reflect.get(client, key)
    if (current instanceof Map) Reflect.set(client, key, new Map(current))
  }
}

/**
 * How often, at most, {@link renewRequestMaps} runs for a connection in use, in milliseconds.
 *
 * @since 0.1.0
 * @category constants
 */
export const REQUEST_MAPS_RENEWAL_MS = 250

/**
 * Marks a connection dead, keeping the first reason.
 *
 * @since 0.1.0
 * @category combinators
 */
export const markDead = (connection: Connection, reason: string): void => {
  if (connection.deadReason === undefined) connection.deadReason = reason
}

/**
 * Whether a connection can still carry requests.
 *
 * @since 0.1.0
 * @category getters
 */
export const isAlive = (connection: Connection): boolean => connection.deadReason === undefined

const makeTransport = (server: ServerConfig, onStderr: (line: string) => void, graceMs: number): Transport => {
  switch (server.transport) {
    case "stdio":
      return new ProcessGroupStdioTransport({
        command: server.command,
        args: [...server.args],
        env: { ...server.env },
        ...(server.cwd === undefined ? {} : { cwd: server.cwd }),
        onStderr,
        killGracePeriodMs: graceMs
      })
    case "streamable-http": {
      const { url, headers } = connectionTarget(server.url, server.headers)
      return new StreamableHTTPClientTransport(url, { requestInit: { headers } })
    }
    case "sse": {
      const { url, headers } = connectionTarget(server.url, server.headers)
      return new SSEClientTransport(url, { requestInit: { headers } })
    }
  }
}

interface Resource {
  readonly client: Client
  readonly transport: Transport
  closed: boolean
  closing?: Promise<void>
}

const closers = new WeakMap<Connection, Resource>()

/**
 * Closes a connection now, whoever holds it; in-flight requests fail. Idempotent: the
 * release of its scope later finds it closed. The pool uses it to close all connections in
 * parallel at shutdown.
 *
 * @since 0.1.0
 * @category combinators
 */
export const closeNow = (connection: Connection): Effect.Effect<void> => {
  const resource = closers.get(connection)
  return resource === undefined ? Effect.void : close(resource)
}

const close = (resource: Resource): Effect.Effect<void> =>
  Effect.promise(() => {
    resource.closed = true
    resource.closing ??= closeClient(resource.client, resource.transport)
    return resource.closing
  })

const SESSION_TERMINATE_BUDGET_MS = 1_000

const closeClient = async (client: Client, transport: Transport): Promise<void> => {
  // A Streamable HTTP server keeps the session until told; tell it, but never wait long.
  if (transport instanceof StreamableHTTPClientTransport && transport.sessionId !== undefined) {
    await Promise.race([
      transport.terminateSession().catch(() => undefined),
      new Promise((resolve) => setTimeout(resolve, SESSION_TERMINATE_BUDGET_MS).unref())
    ])
  }
  await client.close().catch(() => undefined)
  // The client may never have adopted the transport (failed before connect): close it too.
  await transport.close().catch(() => undefined)
}
