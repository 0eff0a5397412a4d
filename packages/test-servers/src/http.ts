/**
 * The fixture server over HTTP: stateful Streamable HTTP at `/mcp` (one `McpServer` per session)
 * and the legacy HTTP+SSE transport at `GET /sse` + `POST /messages?sessionId=`, on `node:http`.
 */
import { randomUUID } from "node:crypto"
import { createServer } from "node:http"
import type { IncomingMessage, ServerResponse } from "node:http"
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js"
import { SSEServerTransport } from "@modelcontextprotocol/sdk/server/sse.js"
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js"
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js"
import { createFixtureServer, createRequestQueue } from "./server.js"

/** Options for {@link startHttpFixtureServer}. */
export interface HttpFixtureServerOptions {
  /** The port to listen on; 0 (the default) picks a free port. */
  readonly port?: number
  /** The interface to listen on; defaults to `127.0.0.1`. */
  readonly host?: string
  /**
   * What the `crash` tool does, given the exit code. Defaults to closing the whole server (every session
   * and connection, without answers), so an in-process server never kills its host; the bin exits.
   */
  readonly onCrash?: (code: number) => void
  /** Each session's server answers its lists this many items at a time (see `FixtureServerOptions.pageSize`). */
  readonly pageSize?: number
  /**
   * Handle one request at a time across every session of this server, in arrival order, as a
   * single-threaded server would (see `FixtureServerOptions.serial`): the sessions share one queue.
   */
  readonly serial?: boolean
}

/** A running HTTP fixture server. */
export interface HttpFixtureServer {
  /** The Streamable HTTP endpoint, `http://HOST:PORT/mcp`. */
  readonly url: string
  /** The legacy SSE endpoint, `http://HOST:PORT/sse`. */
  readonly sseUrl: string
  /** The port it listens on. */
  readonly port: number
  /** Closes every session and the listener; safe to call more than once. */
  close(): Promise<void>
}

interface Session {
  readonly transport: StreamableHTTPServerTransport | SSEServerTransport
  readonly server: McpServer
}

const MAX_BODY_BYTES = 4 * 1024 * 1024

const sendJsonRpcError = (res: ServerResponse, status: number, code: number, message: string): void => {
  if (res.headersSent) {
    res.end()
    return
  }
  res.writeHead(status, { "Content-Type": "application/json" })
  res.end(JSON.stringify({ jsonrpc: "2.0", error: { code, message }, id: null }))
}

const readBody = async (req: IncomingMessage): Promise<string | undefined> => {
  const chunks: Array<Buffer> = []
  let size = 0
  for await (const chunk of req) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk))
    size += buffer.length
    if (size > MAX_BODY_BYTES) return undefined
    chunks.push(buffer)
  }
  return Buffer.concat(chunks).toString("utf8")
}

const headerValue = (value: string | Array<string> | undefined): string | undefined =>
  Array.isArray(value) ? value[0] : value

const urlHost = (host: string): string => {
  if (host === "0.0.0.0" || host === "::" || host === "") return "127.0.0.1"
  return host.includes(":") ? `[${host}]` : host
}

/** Starts the HTTP fixture server in this process and resolves once it listens. */
export const startHttpFixtureServer = async (options: HttpFixtureServerOptions = {}): Promise<HttpFixtureServer> => {
  const host = options.host ?? "127.0.0.1"
  const sessions = new Map<string, Session>()
  let closing: Promise<void> | undefined

  const closeSession = async (session: Session): Promise<void> => {
    await session.server.close().catch(() => {})
  }

  // Like a process exit: every session and connection goes, without answers.
  const crash = options.onCrash ?? (() => void shutdown(true))
  // One queue for every session (Streamable HTTP and SSE alike), as in a single-threaded server.
  const requestQueue = options.serial === true ? createRequestQueue() : undefined
  const newServer = (): McpServer =>
    createFixtureServer({
      onCrash: crash,
      onForgetSessions: () => sessions.clear(),
      ...(options.pageSize === undefined ? {} : { pageSize: options.pageSize }),
      ...(requestQueue === undefined ? {} : { serial: true, requestQueue })
    })

  const handleMcp = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const sessionId = headerValue(req.headers["mcp-session-id"])
    const existing = sessionId === undefined ? undefined : sessions.get(sessionId)
    if (
      sessionId !== undefined &&
      (existing === undefined || !(existing.transport instanceof StreamableHTTPServerTransport))
    ) {
      sendJsonRpcError(res, 404, -32001, "Session not found")
      return
    }
    if (req.method === "POST") {
      const raw = await readBody(req)
      if (raw === undefined) {
        sendJsonRpcError(res, 413, -32600, "Request body too large")
        return
      }
      let body: unknown
      try {
        body = JSON.parse(raw)
      } catch {
        sendJsonRpcError(res, 400, -32700, "Parse error")
        return
      }
      if (existing !== undefined && existing.transport instanceof StreamableHTTPServerTransport) {
        await existing.transport.handleRequest(req, res, body)
        return
      }
      if (!isInitializeRequest(body)) {
        sendJsonRpcError(res, 400, -32000, "Bad Request: No valid session ID provided")
        return
      }
      const server = newServer()
      const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => {
          sessions.set(id, { transport, server })
        }
      })
      // SDK transports report closing only through this callback property (chained by `connect`).
      // oxlint-disable-next-line unicorn/prefer-add-event-listener
      transport.onclose = () => {
        const id = transport.sessionId
        if (id !== undefined && sessions.get(id)?.transport === transport) sessions.delete(id)
      }
      await server.connect(transport)
      await transport.handleRequest(req, res, body)
      return
    }
    if (req.method === "GET" || req.method === "DELETE") {
      if (existing === undefined || !(existing.transport instanceof StreamableHTTPServerTransport)) {
        sendJsonRpcError(res, 400, -32000, "Bad Request: No valid session ID provided")
        return
      }
      await existing.transport.handleRequest(req, res)
      return
    }
    res.writeHead(405, { Allow: "GET, POST, DELETE" }).end()
  }

  const handleSse = async (res: ServerResponse): Promise<void> => {
    const server = newServer()
    const transport = new SSEServerTransport("/messages", res)
    sessions.set(transport.sessionId, { transport, server })
    // oxlint-disable-next-line unicorn/prefer-add-event-listener
    transport.onclose = () => {
      if (sessions.get(transport.sessionId)?.transport === transport) sessions.delete(transport.sessionId)
    }
    await server.connect(transport)
  }

  const handleMessages = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const sessionId = url.searchParams.get("sessionId")
    const session = sessionId === null ? undefined : sessions.get(sessionId)
    if (session === undefined || !(session.transport instanceof SSEServerTransport)) {
      sendJsonRpcError(res, 404, -32001, "Session not found")
      return
    }
    await session.transport.handlePostMessage(req, res)
  }

  const httpServer = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://fixture.invalid")
    if (closing !== undefined) {
      sendJsonRpcError(res, 503, -32000, "Server is closing")
      return
    }
    const route = async (): Promise<void> => {
      if (url.pathname === "/mcp") return handleMcp(req, res)
      if (url.pathname === "/sse" && req.method === "GET") return handleSse(res)
      if (url.pathname === "/messages" && req.method === "POST") return handleMessages(req, res, url)
      res.writeHead(404, { "Content-Type": "text/plain" }).end("Not found")
    }
    route().catch((error: unknown) => {
      process.stderr.write(`fixture server: error handling ${req.method} ${url.pathname}: ${String(error)}\n`)
      sendJsonRpcError(res, 500, -32603, "Internal server error")
    })
  })

  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error): void => reject(error)
    httpServer.once("error", onError)
    httpServer.listen(options.port ?? 0, host, () => {
      httpServer.off("error", onError)
      resolve()
    })
  })
  const address = httpServer.address()
  if (address === null || typeof address === "string") throw new Error("fixture server: no TCP address")
  const { port } = address
  const base = `http://${urlHost(host)}:${port}`

  /** Closes every session, then the listener; `abrupt` destroys the connections first, like a process exit. */
  function shutdown(abrupt: boolean): Promise<void> {
    closing ??= (async () => {
      const closed = new Promise<void>((resolve) => httpServer.close(() => resolve()))
      if (abrupt) httpServer.closeAllConnections()
      const open = [...sessions.values()]
      sessions.clear()
      await Promise.all(open.map(closeSession))
      httpServer.closeAllConnections()
      await closed
    })()
    return closing
  }
  const close = (): Promise<void> => shutdown(false)

  return { url: `${base}/mcp`, sseUrl: `${base}/sse`, port, close }
}
