/**
 * The fixture server answered by the SDK's own `Client` over stdio, Streamable HTTP and legacy SSE:
 * tools, errors, `_meta`, progress, resources, prompts and completions.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js"
import { McpError } from "@modelcontextprotocol/sdk/types.js"
import type { Progress } from "@modelcontextprotocol/sdk/types.js"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { FAIL_ERROR_CODE, fixtureStdioConfig, fixtureToolNames, startHttpFixtureServer } from "../src/index.js"
import type { HttpFixtureServer } from "../src/index.js"

const textOf = (result: unknown): string => {
  const content: unknown = typeof result === "object" && result !== null && "content" in result ? result.content : []
  const first: unknown = Array.isArray(content) ? content[0] : undefined
  if (typeof first === "object" && first !== null && "text" in first && typeof first.text === "string") {
    return first.text
  }
  throw new Error(`no text content in ${JSON.stringify(result)}`)
}

let http: HttpFixtureServer | undefined
beforeAll(async () => {
  http = await startHttpFixtureServer()
})
afterAll(async () => {
  await http?.close()
})

const httpServer = (): HttpFixtureServer => {
  if (http === undefined) throw new Error("HTTP fixture server not started")
  return http
}

const transports: ReadonlyArray<readonly [string, () => Transport]> = [
  ["stdio", () => new StdioClientTransport({ ...fixtureStdioConfig(), stderr: "pipe" })],
  ["streamable http", () => new StreamableHTTPClientTransport(new URL(httpServer().url))],
  ["sse", () => new SSEClientTransport(new URL(httpServer().sseUrl))]
]

describe.each(transports)("fixture server over %s", (_name, makeTransport) => {
  const clients: Array<Client> = []
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()))
  })

  const connect = async (): Promise<Client> => {
    const client = new Client({ name: "fixture-test", version: "1.0.0" })
    clients.push(client)
    await client.connect(makeTransport())
    return client
  }

  it("declares its capabilities and lists every tool", async () => {
    const client = await connect()
    expect(client.getServerVersion()?.name).toBe("mcp-pool-fixture")
    expect(client.getServerCapabilities()).toMatchObject({ tools: {}, resources: {}, prompts: {}, completions: {} })
    const { tools } = await client.listTools()
    expect(tools.map((tool) => tool.name).toSorted()).toEqual([...fixtureToolNames].toSorted())
  })

  it("answers echo, add, cpu, sleep and pid", async () => {
    const client = await connect()
    expect(textOf(await client.callTool({ name: "echo", arguments: { text: "hi there" } }))).toBe("hi there")
    const sum = await client.callTool({ name: "add", arguments: { a: 2, b: 40 } })
    expect(textOf(sum)).toBe("42")
    expect(sum.structuredContent).toEqual({ sum: 42 })
    expect(textOf(await client.callTool({ name: "cpu", arguments: { ms: 20 } }))).toBe("burned 20 ms")
    expect(textOf(await client.callTool({ name: "sleep", arguments: { ms: 10 } }))).toBe("slept 10 ms")
    expect(Number(textOf(await client.callTool({ name: "pid" })))).toBeGreaterThan(0)
  })

  it("fail rejects with a JSON-RPC error; tool_error resolves with isError", async () => {
    const client = await connect()
    const error: unknown = await client
      .callTool({ name: "fail", arguments: { message: "boom" } })
      .catch((e: unknown) => e)
    expect(error).toBeInstanceOf(McpError)
    expect(error).toMatchObject({ code: FAIL_ERROR_CODE, message: `MCP error ${FAIL_ERROR_CODE}: boom` })
    await expect(client.callTool({ name: "fail", arguments: { code: -32000 } })).rejects.toMatchObject({
      code: -32000,
      message: "MCP error -32000: fixture failure"
    })
    const toolError = await client.callTool({ name: "tool_error", arguments: { message: "bad input" } })
    expect(toolError.isError).toBe(true)
    expect(textOf(toolError)).toBe("bad input")
    // The connection is still usable after both.
    expect(textOf(await client.callTool({ name: "echo", arguments: { text: "after" } }))).toBe("after")
  })

  it("invalid arguments come back as an isError result (McpServer's own behaviour)", async () => {
    const client = await connect()
    const result = await client.callTool({ name: "echo", arguments: { text: 1 } })
    expect(result.isError).toBe(true)
  })

  it("echo_meta returns the _meta the request carried", async () => {
    const client = await connect()
    const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    const result = await client.callTool({ name: "echo_meta", arguments: {}, _meta: { traceparent, custom: { n: 1 } } })
    expect(result.structuredContent).toEqual({ meta: { traceparent, custom: { n: 1 } } })
    expect(JSON.parse(textOf(result))).toEqual({ traceparent, custom: { n: 1 } })
  })

  it("sleep with progressIntervalMs delivers progress notifications", async () => {
    const client = await connect()
    const progress: Array<Progress> = []
    const result = await client.callTool({ name: "sleep", arguments: { ms: 300, progressIntervalMs: 50 } }, undefined, {
      onprogress: (p) => progress.push(p)
    })
    expect(textOf(result)).toBe("slept 300 ms")
    expect(progress.length).toBeGreaterThanOrEqual(2)
    expect(progress.every((p) => p.total === 300)).toBe(true)
    const values = progress.map((p) => p.progress)
    expect(values.toSorted((a, b) => a - b)).toEqual(values)
  })

  it("sleep is cancelled by the client's abort signal", async () => {
    const client = await connect()
    const controller = new AbortController()
    const call = client.callTool({ name: "sleep", arguments: { ms: 10_000 } }, undefined, { signal: controller.signal })
    setTimeout(() => controller.abort("enough"), 50)
    await expect(call).rejects.toThrow()
    expect(textOf(await client.callTool({ name: "echo", arguments: { text: "still alive" } }))).toBe("still alive")
  })

  it("serves resources, the item template, the greet prompt and completions", async () => {
    const client = await connect()
    const { resources } = await client.listResources()
    expect(resources.map((r) => r.uri)).toEqual(
      expect.arrayContaining(["fixture://greeting", "fixture://items/1", "fixture://items/2", "fixture://items/3"])
    )
    const { resourceTemplates } = await client.listResourceTemplates()
    expect(resourceTemplates.map((t) => t.uriTemplate)).toEqual(["fixture://items/{id}"])
    const greeting = await client.readResource({ uri: "fixture://greeting" })
    expect(greeting.contents).toEqual([{ uri: "fixture://greeting", mimeType: "text/plain", text: "hello" }])
    const item = await client.readResource({ uri: "fixture://items/2" })
    expect(item.contents[0]).toMatchObject({ uri: "fixture://items/2", text: "item 2" })

    const { prompts } = await client.listPrompts()
    expect(prompts).toEqual([
      expect.objectContaining({ name: "greet", arguments: [expect.objectContaining({ name: "name" })] })
    ])
    const prompt = await client.getPrompt({ name: "greet", arguments: { name: "alice" } })
    expect(prompt.messages).toEqual([{ role: "user", content: { type: "text", text: "Please greet alice." } }])

    const ids = await client.complete({
      ref: { type: "ref/resource", uri: "fixture://items/{id}" },
      argument: { name: "id", value: "" }
    })
    expect(ids.completion.values).toEqual(["1", "2", "3"])
    const two = await client.complete({
      ref: { type: "ref/resource", uri: "fixture://items/{id}" },
      argument: { name: "id", value: "2" }
    })
    expect(two.completion.values).toEqual(["2"])
    const names = await client.complete({
      ref: { type: "ref/prompt", name: "greet" },
      argument: { name: "name", value: "b" }
    })
    expect(names.completion.values).toEqual(["bob"])
  })
})

describe("fixture server over stdio, process behaviour", () => {
  const clients: Array<Client> = []
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()))
  })

  it("writes its ready line to stderr and reports its own pid", async () => {
    const transport = new StdioClientTransport({ ...fixtureStdioConfig(["--name", "named"]), stderr: "pipe" })
    let stderr = ""
    transport.stderr?.on("data", (chunk: Buffer) => {
      stderr += chunk.toString("utf8")
    })
    const client = new Client({ name: "fixture-test", version: "1.0.0" })
    clients.push(client)
    await client.connect(transport)
    expect(client.getServerVersion()?.name).toBe("named")
    expect(Number(textOf(await client.callTool({ name: "pid" })))).toBe(transport.pid)
    await expect.poll(() => stderr).toContain("fixture server ready (stdio)")
  })

  it("crash exits the process: the call fails and the transport closes", async () => {
    const transport = new StdioClientTransport({ ...fixtureStdioConfig(), stderr: "ignore" })
    const client = new Client({ name: "fixture-test", version: "1.0.0" })
    clients.push(client)
    const closed = new Promise<void>((resolve) => {
      // The SDK's Client reports closing only through this callback property.
      // oxlint-disable-next-line unicorn/prefer-add-event-listener
      client.onclose = () => resolve()
    })
    await client.connect(transport)
    await expect(client.callTool({ name: "crash", arguments: { code: 3 } })).rejects.toMatchObject({ code: -32000 })
    await closed
  })
})
