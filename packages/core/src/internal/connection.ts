/**
 * One live MCP connection as the pool keeps it: the SDK `Client` and its transport, the
 * bookkeeping the pool updates, how it is opened, found dead, and closed.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { SSEClientTransport, SseError } from "@modelcontextprotocol/sdk/client/sse.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import type { FetchLike, Transport } from "@modelcontextprotocol/sdk/shared/transport.js"
import { type ClientCapabilities, ErrorCode, McpError } from "@modelcontextprotocol/sdk/types.js"
import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type * as Connection from "../Connection.js"
import { MCPConnectionError } from "../Errors.js"
import { connectionTarget, redactUrl, type ServerConfig, scrubber } from "../ServerConfig.js"
import type { Attribution } from "../session/Attribution.js"
import { describeCause, networkCode, tagSendFailures } from "./classify.js"
import { inherited } from "./environment.js"
import { scrubCause } from "./scrub.js"
import { type ProcessExit, ProcessGroupStdioTransport } from "./stdioTransport.js"
import { clientInfo } from "./version.js"

/** A connection with the bookkeeping its pool writes. */
export interface LiveConnection extends Connection.Connection {
  lastUsedAt: number
  leases: number
  inFlight: number
  /** The send numbers of the requests in flight, oldest first (a Set keeps insertion order). */
  readonly outstanding: Set<number>
  /** The number the next request sent on it gets. */
  sent: number
  openedOnDemand: boolean
  deadReason: string | undefined
  /** When {@link renewRequestMaps} last ran, in `performance.now()` milliseconds. */
  requestMapsRenewedAt: number
  /** Its calls, for attributing the server's requests; only when a handler could answer one. */
  readonly attribution: Attribution | undefined
}

/**
 * What the server's session layer gives one new connection: the capabilities its client
 * advertises, the handlers it installs before the handshake, and what it does after.
 */
export interface SessionTap {
  readonly capabilities: ClientCapabilities
  readonly attribution: Attribution | undefined
  /** The `fetch` of a Streamable HTTP transport, when it must read the response streams. */
  readonly fetch: FetchLike | undefined
  /** Installs handlers on the client (and may wrap the transport), before the handshake. */
  readonly attach: (client: Client, transport: Transport) => void
  /** Runs after the handshake, before the connection is used; a failure is logged, not fatal. */
  readonly ready: (client: Client) => Promise<void>
}

/** Options of {@link make}: `Connection.MakeOptions`, with a pool's view of a death. */
export interface MakeOptions extends Omit<Connection.MakeOptions, "onDead"> {
  readonly onDead?: ((connection: LiveConnection, reason: string) => void) | undefined
  /** The server's session layer for this connection (see `session/Hub`); none: a bare client. */
  readonly session?: SessionTap | undefined
}

interface Resource {
  readonly client: Client
  readonly transport: Transport
  closed: boolean
  closing?: Promise<void>
  /** Whether a failure to close was logged (by the first of the callers waiting for it). */
  reported?: boolean
}

/** Everything one opening needs: its server, its id, its scrubber, and where it logs. */
interface Opening {
  readonly options: MakeOptions
  readonly id: number
  readonly scrub: (text: string) => string
  readonly log: (effect: Effect.Effect<void>) => void
}

let nextId = 1

/** How long a stdio server that broke the handshake gets to be reaped, for its exit status. */
const EXIT_STATUS_WAIT_MS = 250

/**
 * Opens a connection: starts the transport (spawning the server for stdio), runs the MCP
 * handshake under `connectionTimeoutMs`, and closes everything when the scope closes. A
 * failure to connect ends any process it started before failing, and says how the process
 * ended and what it last wrote to stderr.
 */
export const make = (options: MakeOptions): Effect.Effect<LiveConnection, MCPConnectionError, Scope.Scope> =>
  Effect.contextWith((context: Context.Context<never>) => {
    const scrub = scrubber(options.server)
    const opening: Opening = { options, id: nextId++, scrub, log: (effect) => void Effect.runForkWith(context)(effect) }
    return Effect.acquireRelease(
      Effect.sync(() => openResource(opening)),
      close
    ).pipe(
      Effect.flatMap((resource) =>
        handshake(opening, resource).pipe(
          Effect.andThen(afterHandshake(opening, resource)),
          Effect.map(() => adopt(opening, resource))
        )
      ),
      Effect.annotateLogs({ server: options.server.name })
    )
  })

/** Where a stdio server's stderr lines go (see `Connection.ServerStderr`). */
const stderrSink = (opening: Opening): ((line: string) => void) | undefined => {
  const { server, stderr } = opening.options
  switch (stderr) {
    case "ignore":
      return undefined
    case "inherit":
      return (line) => {
        process.stderr.write(`[${server.name}] ${opening.scrub(line)}\n`)
      }
    default:
      return (line) =>
        opening.log(
          Effect.logDebug(opening.scrub(line)).pipe(
            Effect.annotateLogs({ server: server.name, connection: opening.id, stream: "stderr" })
          )
        )
  }
}

const openResource = (opening: Opening): Resource => {
  const { server, shutdownGracePeriodMs, session } = opening.options
  const onStderr = stderrSink(opening)
  const transport = makeTransport(server, onStderr, shutdownGracePeriodMs, session?.fetch)
  // The process-group transport tags its own send failures.
  if (!(transport instanceof ProcessGroupStdioTransport)) tagSendFailures(transport)
  const client = new Client(clientInfo, { capabilities: session?.capabilities ?? {} })
  session?.attach(client, transport)
  return { transport, client, closed: false }
}

/** What the session layer does once the server answered the handshake (a failure is only logged). */
const afterHandshake = (opening: Opening, resource: Resource): Effect.Effect<void> => {
  const session = opening.options.session
  if (session === undefined) return Effect.void
  return Effect.tryPromise({
    try: () => session.ready(resource.client),
    catch: (cause) => cause
  }).pipe(
    Effect.timeoutOrElse({ duration: opening.options.connectionTimeoutMs, orElse: () => Effect.fail("timed out") }),
    Effect.catch((cause) =>
      Effect.logWarning(
        opening.scrub(`setting up connection #${opening.id} after its handshake: ${describeCause(cause)}`)
      )
    )
  )
}

/** The MCP handshake under the connection timeout, failing with what the server left behind. */
const handshake = (opening: Opening, resource: Resource): Effect.Effect<void, MCPConnectionError> => {
  const timeoutMs = opening.options.connectionTimeoutMs
  return Effect.tryPromise({
    try: (signal) => resource.client.connect(resource.transport, { timeout: timeoutMs, signal }),
    catch: (cause) => cause
  }).pipe(
    Effect.timeoutOrElse({
      duration: timeoutMs,
      orElse: () => Effect.fail(new HandshakeTimeout())
    }),
    Effect.catch((cause) =>
      Effect.flatMap(processOutcome(resource.transport), (outcome) =>
        Effect.fail(connectFailure(opening, cause, outcome))
      )
    )
  )
}

/** Why a connect failed, in the words a person needs: the process that ended, the address not reached. */
const whyNot = (server: ServerConfig, cause: unknown, exit: ProcessExit | undefined): string => {
  const ended = exit !== undefined && (exit.code !== null || exit.signal !== null)
  if (ended && cause instanceof McpError && cause.code === ErrorCode.ConnectionClosed) {
    return "the server process ended before it answered the MCP handshake"
  }
  const code = networkCode(cause)
  if (server.transport !== "stdio" && code !== undefined) return `${redactUrl(server.url)} cannot be reached (${code})`
  return describeCause(cause)
}

/**
 * For a stdio server that got only the safe default of this process's environment: where to
 * look when it hangs (a server behind `npx` that cannot reach its registry hangs in download).
 */
const environmentHint = (server: ServerConfig): string =>
  server.transport === "stdio" && server.inheritEnv !== true
    ? ` (a server that needs more of this process's environment, such as a proxy or a registry's credentials, gets it with "inheritEnv" on its entry)`
    : ""

class HandshakeTimeout {
  readonly _tag = "HandshakeTimeout"
}

/** How a stdio server ended (waiting a moment for it to be reaped) and its last stderr lines. */
const processOutcome = (
  transport: Transport
): Effect.Effect<{ readonly exit: ProcessExit | undefined; readonly stderr: ReadonlyArray<string> }> => {
  if (!(transport instanceof ProcessGroupStdioTransport)) return Effect.succeed({ exit: undefined, stderr: [] })
  return Effect.promise(() =>
    Promise.race([
      transport.exited.then(() => undefined),
      new Promise<void>((resolve) => setTimeout(resolve, EXIT_STATUS_WAIT_MS).unref())
    ])
  ).pipe(Effect.map(() => ({ exit: transport.exitStatus, stderr: transport.stderrTail() })))
}

const connectFailure = (
  opening: Opening,
  cause: unknown,
  outcome: { readonly exit: ProcessExit | undefined; readonly stderr: ReadonlyArray<string> }
): MCPConnectionError => {
  const { scrub, options } = opening
  const timedOut = cause instanceof HandshakeTimeout
  const exit = outcome.exit
  const reason = timedOut
    ? `no answer to the MCP handshake within ${options.connectionTimeoutMs} ms${environmentHint(options.server)}`
    : `could not connect: ${whyNot(options.server, cause, exit)}`
  // What the SDK, fetch or the server said may quote a secret: everything kept is scrubbed.
  return new MCPConnectionError({
    serverName: options.server.name,
    reason: scrub(reason),
    requestSent: false,
    cause: timedOut ? undefined : scrubCause(cause, scrub),
    ...(exit === undefined || (exit.code === null && exit.signal === null)
      ? {}
      : { exitCode: exit.code, signal: exit.signal }),
    ...(outcome.stderr.length === 0 ? {} : { stderr: outcome.stderr.map(scrub) })
  })
}

/** The connection of a resource that finished its handshake, watched for its death. */
const adopt = (opening: Opening, resource: Resource): LiveConnection => {
  const { client, transport } = resource
  const { server, onDead } = opening.options
  const now = Date.now()
  const connection: LiveConnection = {
    id: opening.id,
    serverName: server.name,
    transport: server.transport,
    client,
    pid: transport instanceof ProcessGroupStdioTransport ? transport.pid : undefined,
    sessionId: transport.sessionId,
    createdAt: now,
    lastUsedAt: now,
    leases: 0,
    inFlight: 0,
    outstanding: new Set(),
    sent: 0,
    openedOnDemand: false,
    deadReason: undefined,
    requestMapsRenewedAt: performance.now(),
    attribution: opening.options.session?.attribution
  }
  closers.set(connection, resource)
  const died = (reason: string) => {
    if (resource.closed || !isAlive(connection)) return
    markDead(connection, reason)
    onDead?.(connection, reason)
  }
  client.onclose = () => died("the connection closed (server process exited or transport failed)")
  client.onerror = (error) => {
    if (resource.closed) return
    // A legacy SSE stream that broke would reconnect on its own into a new session that never
    // had the MCP handshake: the connection is dead, and is closed by its pool.
    if (error instanceof SseError) died(`the SSE event stream broke: ${describeCause(error)}`)
    opening.log(
      Effect.logDebug(opening.scrub(`transport error: ${describeCause(error)}`)).pipe(
        Effect.annotateLogs({ server: server.name, connection: opening.id })
      )
    )
  }
  return connection
}

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
 * objects; fresh copies of these maps make that stop (see docs/design.md). The pool renews
 * them at most every {@link REQUEST_MAPS_RENEWAL_MS} while a connection is used; a field the
 * SDK no longer has is left alone.
 */
export const renewRequestMaps = (connection: LiveConnection, now: number): void => {
  connection.requestMapsRenewedAt = now
  const client: object = connection.client
  for (const key of REQUEST_MAPS) {
    const current: unknown = Reflect.get(client, key)
    if (current instanceof Map) Reflect.set(client, key, new Map(current))
  }
}

/** How often, at most, {@link renewRequestMaps} runs for a connection in use, in milliseconds. */
export const REQUEST_MAPS_RENEWAL_MS = 250

/** Marks a connection dead, keeping the first reason. */
export const markDead = (connection: LiveConnection, reason: string): void => {
  if (connection.deadReason === undefined) connection.deadReason = reason
}

/** Whether a connection can still carry requests. */
export const isAlive = (connection: Connection.Connection): boolean => connection.deadReason === undefined

const makeTransport = (
  server: ServerConfig,
  onStderr: ((line: string) => void) | undefined,
  graceMs: number,
  fetch: FetchLike | undefined
): Transport => {
  switch (server.transport) {
    case "stdio":
      return new ProcessGroupStdioTransport({
        command: server.command,
        args: [...server.args],
        baseEnv: inherited(server, process.env),
        env: { ...server.env },
        ...(server.cwd === undefined ? {} : { cwd: server.cwd }),
        ...(onStderr === undefined ? {} : { onStderr }),
        killGracePeriodMs: graceMs
      })
    case "streamable-http": {
      const { url, headers } = connectionTarget(server.url, server.headers)
      return new StreamableHTTPClientTransport(url, {
        requestInit: { headers },
        ...(fetch === undefined ? {} : { fetch })
      })
    }
    case "sse": {
      const { url, headers } = connectionTarget(server.url, server.headers)
      return new SSEClientTransport(url, { requestInit: { headers } })
    }
  }
}

const closers = new WeakMap<Connection.Connection, Resource>()

/**
 * Closes a connection now, whoever holds it; in-flight requests fail. Idempotent, and every
 * caller waits for the same close: the release of its scope later finds it closed. The pool
 * uses it to close all connections in parallel at shutdown.
 */
export const closeNow = (connection: Connection.Connection): Effect.Effect<void> => {
  const resource = closers.get(connection)
  return resource === undefined ? Effect.void : close(resource)
}

const close = (resource: Resource): Effect.Effect<void> =>
  Effect.flatMap(
    Effect.promise(() => {
      resource.closed = true
      resource.closing ??= closeClient(resource.client, resource.transport)
      return resource.closing.then(
        () => undefined,
        (error: unknown) => error
      )
    }),
    // A process group that survived SIGKILL is worth an error in the log: nothing else can end it.
    (error) => {
      if (error === undefined || resource.reported === true) return Effect.void
      resource.reported = true
      return Effect.logError(`could not end the server: ${describeCause(error)}`)
    }
  )

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
  // The client may never have adopted the transport (failed before connect): close it too. Its
  // failure (a process group that survived SIGKILL) is the one worth reporting.
  await transport.close()
}
