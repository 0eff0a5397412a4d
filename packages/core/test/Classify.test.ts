import { describe, expect, it } from "@effect/vitest"
import { ErrorCode, McpError } from "@modelcontextprotocol/sdk/types.js"
import { classify } from "../src/internal/classify.js"

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
