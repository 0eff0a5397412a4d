import { inspect } from "node:util"
import { describe, expect, it } from "@effect/vitest"
import { StreamableHTTPError } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { ErrorCode, McpError } from "@modelcontextprotocol/sdk/types.js"
import { classify, SendFailed } from "../src/internal/classify.js"

const context = { serverName: "fx", method: "tools/call", transport: "stdio", scrub: (text: string) => text } as const

describe("classify", () => {
  it("the SDK's own timeouts are MCPTimeout with the limit that was exceeded", () => {
    const noAnswer = classify(
      McpError.fromError(ErrorCode.RequestTimeout, "Request timed out", { timeout: 750 }),
      context
    )
    expect(noAnswer._tag).toBe("Timeout")
    expect(noAnswer.error.message).toBe('MCP server "fx": tools/call timed out after 750 ms')
    const capped = classify(
      McpError.fromError(ErrorCode.RequestTimeout, "Maximum total timeout exceeded", {
        maxTotalTimeout: 2_000,
        totalElapsed: 2_010
      }),
      context
    )
    expect(capped._tag).toBe("Timeout")
    expect(capped._tag === "Timeout" && capped.error.timeoutMs).toBe(2_000)
  })

  it("a server's own error with the timeout code stays a request error, with its message", () => {
    const fromServer = classify(
      new McpError(ErrorCode.RequestTimeout, "upstream took too long", { upstream: "db" }),
      context
    )
    expect(fromServer._tag).toBe("Request")
    expect(fromServer._tag === "Request" && fromServer.error.reason).toBe("upstream took too long")
    expect(fromServer._tag === "Request" && fromServer.error.code).toBe(ErrorCode.RequestTimeout)
  })
})

describe("classify: a lost session", () => {
  const sseContext = { ...context, transport: "sse" } as const
  const httpContext = { ...context, transport: "streamable-http" } as const
  // What `SSEClientTransport.send` throws when the messages endpoint answers 404.
  const sse404 = new Error(
    'Error POSTing to endpoint (HTTP 404): {"jsonrpc":"2.0","error":{"code":-32001,"message":"Session not found"},"id":null}'
  )

  it("an SSE POST answered 404 is a dead connection, the request not sent (so the pool may retry it)", () => {
    const classified = classify(new SendFailed(sse404), sseContext)
    expect(classified._tag).toBe("Connection")
    if (classified._tag !== "Connection") return
    expect(classified.dead).toBe(true)
    expect(classified.error.requestSent).toBe(false)
    expect(classified.error.isRetryable).toBe(true)
    expect(classified.error.reason).toBe("the server no longer knows this session (HTTP 404)")
    // Any other failed POST may have reached the server: neither dead nor retried.
    const other = classify(new SendFailed(new Error("Error POSTing to endpoint (HTTP 500): boom")), sseContext)
    expect(other._tag === "Connection" && [other.dead, other.error.requestSent]).toEqual([false, true])
  })

  it("exactly like Streamable HTTP's 404", () => {
    const sse = classify(new SendFailed(sse404), sseContext)
    const http = classify(new SendFailed(new StreamableHTTPError(404, "Error POSTing to endpoint: gone")), httpContext)
    expect(http._tag === "Connection" && [http.dead, http.error.requestSent, http.error.reason]).toEqual(
      sse._tag === "Connection" && [sse.dead, sse.error.requestSent, sse.error.reason]
    )
  })
})

describe("classify: no secret in the errors it builds", () => {
  const secret = "sk-test-3f9a1c2b7d"
  const scrub = (text: string) => text.replaceAll(secret, "[REDACTED]")
  const httpContext = { ...context, transport: "streamable-http", scrub } as const
  const leaks = (value: unknown): ReadonlyArray<string> =>
    [
      value instanceof Error ? value.message : "",
      String(value),
      inspect(value, { depth: 10 }),
      JSON.stringify(value) ?? ""
    ].filter((text) => text.includes(secret))

  it("a connection error keeps a scrubbed copy of the cause, with its name, code, stack and cause chain", () => {
    // As undici's fetch fails: a TypeError whose cause is the socket's error.
    const socket = Object.assign(new Error(`read ECONNRESET after sending key ${secret}`), { code: "ECONNRESET" })
    const raw = new TypeError(`fetch failed: invalid API key ${secret}`, { cause: socket })
    const classified = classify(new SendFailed(raw), httpContext)
    expect(classified._tag).toBe("Connection")
    const error = classified.error
    expect(leaks(error)).toEqual([])
    const cause = error._tag === "MCPConnectionError" ? error.cause : undefined
    expect(cause).toBeInstanceOf(Error)
    const shown = inspect(cause, { depth: 10 })
    expect(shown).toContain("fetch failed: invalid API key [REDACTED]")
    expect(shown).toContain("TypeError")
    expect(shown).toContain("read ECONNRESET after sending key [REDACTED]")
    expect(shown).toContain("code: 'ECONNRESET'")
    // The raw error is untouched: the copy is the error's, not a change of what the SDK threw.
    expect(raw.message).toContain(secret)
  })

  it("a request error scrubs its reason and its data, deeply", () => {
    const classified = classify(
      new McpError(-32000, `upstream refused key ${secret}`, {
        attempts: [{ header: `Bearer ${secret}` }],
        note: "kept"
      }),
      httpContext
    )
    expect(classified._tag).toBe("Request")
    if (classified._tag !== "Request") return
    expect(leaks(classified.error)).toEqual([])
    expect(classified.error.reason).toBe("upstream refused key [REDACTED]")
    expect(classified.error.data).toEqual({ attempts: [{ header: "Bearer [REDACTED]" }], note: "kept" })
  })
})
