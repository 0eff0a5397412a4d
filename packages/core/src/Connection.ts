/**
 * One live MCP connection: an SDK `Client` and its transport as a scoped resource, opened
 * under `connectionTimeout` and closed (with its whole process group, for stdio) on release.
 *
 * @since 0.1.0
 */
import type { Client } from "@modelcontextprotocol/sdk/client/index.js"
import type * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { MCPConnectionError } from "./Errors.js"
import * as internal from "./internal/connection.js"
import type { ServerConfig } from "./ServerConfig.js"

/**
 * How a connection reaches its server.
 *
 * @since 0.1.0
 * @category models
 */
export type TransportKind = ServerConfig["transport"]

/**
 * A live connection, as its borrower sees it. The pool that owns it keeps its figures.
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
  readonly lastUsedAt: number
  /** How many times the connection was lent. */
  readonly leases: number
  /** Requests running on it now. */
  readonly inFlight: number
  /** Set once the transport closed, the process exited or a request proved the session gone. */
  readonly deadReason: string | undefined
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
  /** What becomes of a stdio server's stderr (see `ServerStderr`); `"log"` when absent. */
  readonly stderr?: ServerStderr | undefined
}

/**
 * What becomes of the lines a stdio server writes to its stderr: `"log"` (the default) logs
 * each at Debug, annotated with the server, the connection and `stream: "stderr"`; `"inherit"`
 * writes them to this process's stderr, each prefixed with `[server name]`; `"ignore"` drops
 * them. Secrets of the server's configuration are removed either way, and the last lines are
 * kept for the error of a server that fails to start.
 *
 * @since 0.1.0
 * @category models
 */
export type ServerStderr = "log" | "inherit" | "ignore"

/**
 * Opens a connection: starts the transport (spawning the server for stdio), runs the MCP
 * handshake under `connectionTimeoutMs`, and closes everything when the scope closes.
 * A failure to connect ends any process it started before failing, and its
 * `MCPConnectionError` says how the server's process ended and what it last wrote to stderr.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: MakeOptions): Effect.Effect<Connection, MCPConnectionError, Scope.Scope> =>
  internal.make(options)

/**
 * Whether a connection can still carry requests.
 *
 * @since 0.1.0
 * @category getters
 */
export const isAlive: (connection: Connection) => boolean = internal.isAlive
