/**
 * The fixture MCP server: an SDK `McpServer` with tools, resources, prompts and completions that exercise
 * the paths a connection pool must handle (slow calls, progress, errors, crashes, `_meta`, requests and
 * notifications from the server, subscriptions, cancellation, paged lists).
 */
import { McpServer, ResourceTemplate } from "@modelcontextprotocol/sdk/server/mcp.js"
import { completable } from "@modelcontextprotocol/sdk/server/completable.js"
import { CallToolRequestSchema, CallToolResultSchema } from "@modelcontextprotocol/sdk/types.js"
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js"
import * as z from "zod"
import { registerNotificationTools } from "./internal/notifications.js"
import { paginateLists } from "./internal/pagination.js"
import { registerRequestsSeen } from "./internal/requestLog.js"
import { text, toolError } from "./internal/results.js"
import { JsonRpcError, requestHandler } from "./internal/sdk.js"
import { createRequestQueue, handleOneAtATime } from "./internal/serial.js"
import type { RequestQueue } from "./internal/serial.js"
import { registerServerRequestTools } from "./internal/serverRequests.js"

export { LOGGER_NAME } from "./internal/notifications.js"
export type { CancelledRequest, RequestsSeen } from "./internal/requestLog.js"
export { createRequestQueue } from "./internal/serial.js"
export type { RequestQueue } from "./internal/serial.js"
export { ELICIT_DEFAULT_URL, elicitFormDefaults, SAMPLE_DEFAULT_MAX_TOKENS } from "./internal/serverRequests.js"

/** The JSON-RPC error code the `fail` tool answers with unless the call passes its own `code`. */
export const FAIL_ERROR_CODE = -32050

/** Options for {@link createFixtureServer}. */
export interface FixtureServerOptions {
  /** The server name reported in the initialize result; defaults to `mcp-pool-fixture`. */
  readonly name?: string
  /**
   * What the `crash` tool does, given the exit code; defaults to `process.exit`. An in-process server
   * passes a function that drops the session instead, so a crash does not kill the host process.
   */
  readonly onCrash?: (code: number) => void
  /**
   * What the `close_stdout` tool does: the stdio bin closes its stdout and keeps running (a server
   * whose output is gone but whose process lives). Elsewhere the tool answers with a tool error.
   */
  readonly onCloseStdout?: () => void
  /**
   * What the `forget_sessions` tool does: the HTTP server forgets every session, as a restarted
   * server would, but keeps its connections and streams open. Elsewhere it answers with a tool error.
   */
  readonly onForgetSessions?: () => void
  /**
   * When set, tools/list, prompts/list, resources/list and resources/templates/list answer this many
   * items at a time with a `nextCursor` (an unknown cursor is a -32602 error); without it, all at once.
   */
  readonly pageSize?: number
  /**
   * When true, the server handles one request at a time, as many single-threaded servers do: every
   * request (initialize, tools/call, tools/list, ping, ..., methods without a handler too) waits until
   * the ones that arrived before it have been handled and answered (head-of-line blocking).
   * Notifications are not queued: a `notifications/cancelled` drops a request still waiting (never
   * answered, as any cancelled request). `requests_seen` counts a request as it arrives, in flight
   * while it waits; but it is a request too, answered in its turn.
   */
  readonly serial?: boolean
  /**
   * In serial mode, the queue requests wait in: servers given the same queue (from
   * {@link createRequestQueue}) handle their requests one at a time between them, as the sessions of
   * a single-threaded process would (the HTTP server gives all its sessions one). Defaults to a queue
   * of this server's own. Ignored unless `serial` is true.
   */
  readonly requestQueue?: RequestQueue
}

/** The names of the tools the fixture server registers, in registration order. */
export const fixtureToolNames = [
  "echo",
  "add",
  "cpu",
  "sleep",
  "fail",
  "tool_error",
  "crash",
  "echo_meta",
  "pid",
  "close_stdout",
  "forget_sessions",
  "env",
  "elicit",
  "sample",
  "roots",
  "add_tool",
  "remove_tool",
  "notify",
  "log",
  "update_resource",
  "subscriptions",
  "requests_seen",
  "bad_output"
] as const

const itemIds = ["1", "2", "3"]
const promptNames = ["alice", "bob"]

/** Burns `ms` milliseconds of this process's CPU time (user + system) in a busy loop. */
const burnCpu = (ms: number): void => {
  const start = process.cpuUsage()
  let sink = 0
  for (;;) {
    for (let i = 0; i < 10_000; i++) sink = (sink + i * 31) % 1_000_003
    const used = process.cpuUsage(start)
    if ((used.user + used.system) / 1000 >= ms) break
  }
  if (sink < 0) throw new Error("unreachable")
}

/** Waits `ms` milliseconds, rejecting as soon as `signal` aborts. */
const delay = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason)
      return
    }
    const onAbort = (): void => {
      clearTimeout(timer)
      reject(signal.reason)
    }
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort)
      resolve()
    }, ms)
    signal.addEventListener("abort", onAbort, { once: true })
  })

/**
 * `McpServer` turns every error thrown by a tool callback (an `McpError` included, except code -32042)
 * into an `isError` tool result. To make `fail` answer with a real JSON-RPC error, the `tools/call`
 * handler `McpServer` installed is wrapped: `fail` throws an error carrying a code, which the protocol
 * layer sends as the JSON-RPC error; every other call goes to `McpServer`'s own handler.
 */
const answerFailWithJsonRpcError = (mcp: McpServer): void => {
  // (Also answers `bad_output` as it is, past McpServer's output check.)
  const original = requestHandler(mcp, "tools/call")
  mcp.server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
    // McpServer checks a tool's output against its schema; this one must break it on purpose.
    if (request.params.name === "bad_output") {
      return { content: [{ type: "text", text: "not a sum" }], structuredContent: { sum: "not a number" } }
    }
    if (request.params.name === "fail") {
      const args = request.params.arguments ?? {}
      const message = typeof args["message"] === "string" ? args["message"] : "fixture failure"
      const code =
        typeof args["code"] === "number" && Number.isSafeInteger(args["code"]) ? args["code"] : FAIL_ERROR_CODE
      throw new JsonRpcError(code, message)
    }
    return CallToolResultSchema.parse(await original(request, extra))
  })
}

/** Creates a fixture `McpServer` (not yet connected) with every fixture tool, resource and prompt registered. */
export const createFixtureServer = (options: FixtureServerOptions = {}): McpServer => {
  const mcp = new McpServer(
    { name: options.name ?? "mcp-pool-fixture", version: "1.0.0" },
    {
      capabilities: {
        tools: { listChanged: true },
        resources: { subscribe: true, listChanged: true },
        prompts: { listChanged: true },
        completions: {},
        logging: {}
      }
    }
  )

  mcp.registerTool(
    "echo",
    { description: "Returns the given text.", inputSchema: { text: z.string() } },
    ({ text: value }) => text(value)
  )

  mcp.registerTool(
    "add",
    {
      description: "Adds two numbers; answers with text and structuredContent {sum}.",
      inputSchema: { a: z.number(), b: z.number() },
      outputSchema: { sum: z.number() }
    },
    ({ a, b }) => ({ content: [{ type: "text", text: String(a + b) }], structuredContent: { sum: a + b } })
  )

  mcp.registerTool(
    "cpu",
    {
      description: "Burns the given milliseconds of CPU time in a busy loop (blocks this server process).",
      inputSchema: { ms: z.number().nonnegative() }
    },
    ({ ms }) => {
      burnCpu(ms)
      return text(`burned ${ms} ms`)
    }
  )

  mcp.registerTool(
    "sleep",
    {
      description:
        "Waits the given milliseconds (cancellable); sends progress every progressIntervalMs if the request has a progressToken.",
      inputSchema: { ms: z.number().nonnegative(), progressIntervalMs: z.number().positive().optional() }
    },
    async ({ ms, progressIntervalMs }, extra) => {
      const { _meta: requestMeta } = extra
      const progressToken = requestMeta?.progressToken
      let ticker: NodeJS.Timeout | undefined
      if (progressIntervalMs !== undefined && progressToken !== undefined) {
        const started = Date.now()
        ticker = setInterval(() => {
          const progress = Math.min(Date.now() - started, ms)
          extra
            .sendNotification({
              method: "notifications/progress",
              params: { progressToken, progress, total: ms, message: `slept ${progress} of ${ms} ms` }
            })
            .catch(() => {})
        }, progressIntervalMs)
      }
      try {
        await delay(ms, extra.signal)
      } finally {
        if (ticker !== undefined) clearInterval(ticker)
      }
      return text(`slept ${ms} ms`)
    }
  )

  mcp.registerTool(
    "fail",
    {
      description: `Answers with a JSON-RPC error (code ${FAIL_ERROR_CODE} unless \`code\` is given), not a tool result.`,
      inputSchema: { message: z.string().optional(), code: z.number().int().optional() }
    },
    ({ message, code }) => {
      // Only reached if the tools/call wrapper is bypassed; McpServer would turn this into an isError result.
      throw new JsonRpcError(code ?? FAIL_ERROR_CODE, message ?? "fixture failure")
    }
  )

  mcp.registerTool(
    "tool_error",
    { description: "Returns a tool result with isError: true.", inputSchema: { message: z.string().optional() } },
    ({ message }) => toolError(message ?? "fixture tool error")
  )

  mcp.registerTool(
    "crash",
    {
      description: "Exits the server process at once with the given code (default 1), without answering.",
      inputSchema: { code: z.number().int().optional() }
    },
    async ({ code }, extra) => {
      const crash = options.onCrash ?? ((exitCode: number) => process.exit(exitCode))
      crash(code ?? 1)
      // Never answers: an in-process crash closes the session, which aborts this request.
      return await new Promise<CallToolResult>((_resolve, reject) => {
        extra.signal.addEventListener("abort", () => reject(new Error("crashed")), { once: true })
      })
    }
  )

  mcp.registerTool(
    "echo_meta",
    { description: "Returns the request's _meta as JSON text and as structuredContent {meta}." },
    (extra) => {
      const { _meta: requestMeta } = extra
      const meta: Record<string, unknown> = { ...requestMeta }
      return { content: [{ type: "text", text: JSON.stringify(meta) }], structuredContent: { meta } }
    }
  )

  mcp.registerTool("pid", { description: "Returns the server's process id." }, () => text(String(process.pid)))

  mcp.registerTool(
    "close_stdout",
    { description: "Over stdio: closes the server's stdout and keeps running, without answering." },
    async (extra) => {
      const close = options.onCloseStdout
      if (close === undefined) return toolError("only over stdio")
      close()
      return await new Promise<CallToolResult>((_resolve, reject) => {
        extra.signal.addEventListener("abort", () => reject(new Error("stdout closed")), { once: true })
      })
    }
  )

  mcp.registerTool(
    "forget_sessions",
    { description: "Over HTTP: forgets every session (as after a restart) and keeps the streams open." },
    () => {
      const forget = options.onForgetSessions
      if (forget === undefined) return toolError("only over HTTP")
      forget()
      return text("forgot every session")
    }
  )

  mcp.registerTool(
    "env",
    {
      description: "Returns an environment variable of the server's process, or (unset).",
      inputSchema: { name: z.string() }
    },
    ({ name }) => text(process.env[name] ?? "(unset)")
  )

  registerServerRequestTools(mcp)
  registerNotificationTools(mcp)

  mcp.registerResource(
    "greeting",
    "fixture://greeting",
    { description: "A fixed greeting.", mimeType: "text/plain" },
    (uri) => ({ contents: [{ uri: uri.href, mimeType: "text/plain", text: "hello" }] })
  )

  mcp.registerResource(
    "item",
    new ResourceTemplate("fixture://items/{id}", {
      list: () => ({
        resources: itemIds.map((id) => ({ uri: `fixture://items/${id}`, name: `item ${id}`, mimeType: "text/plain" }))
      }),
      complete: { id: (value) => itemIds.filter((id) => id.startsWith(value)) }
    }),
    { description: "Items by id (1, 2, 3).", mimeType: "text/plain" },
    (uri, variables) => {
      const id = variables["id"]
      return { contents: [{ uri: uri.href, mimeType: "text/plain", text: `item ${String(id)}` }] }
    }
  )

  mcp.registerPrompt(
    "greet",
    {
      description: "Greets someone by name.",
      argsSchema: { name: completable(z.string(), (value) => promptNames.filter((name) => name.startsWith(value))) }
    },
    ({ name }) => ({
      messages: [{ role: "user", content: { type: "text", text: `Please greet ${name}.` } }]
    })
  )

  answerFailWithJsonRpcError(mcp)
  if (options.pageSize !== undefined) paginateLists(mcp, options.pageSize)
  // After every wrapper of a handler: each request waits its turn once (inside the record below).
  if (options.serial === true) handleOneAtATime(mcp, options.requestQueue ?? createRequestQueue())
  // Last: it wraps every handler installed so far (and any set later) to count what arrives.
  registerRequestsSeen(mcp)
  mcp.registerTool(
    "bad_output",
    {
      description: "Declares outputSchema {sum: number} but answers structuredContent {sum: a string}.",
      outputSchema: { sum: z.number() }
    },
    () => ({ content: [{ type: "text", text: "unreachable" }], structuredContent: { sum: 0 } })
  )
  return mcp
}
