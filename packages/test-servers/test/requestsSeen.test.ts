/**
 * `requests_seen`: what one fixture server instance was asked (per method, in flight, cancelled),
 * over stdio, Streamable HTTP and SSE, with a cancellation that still aborts the request.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { EmptyResultSchema } from "@modelcontextprotocol/sdk/types.js"
import { describe, expect, it } from "vitest"
import * as z from "zod"
import { fixtureStdioConfig } from "../src/index.js"
import type { RequestsSeen } from "../src/index.js"
import { jsonOf, textOf, transportNames, useFixture } from "./kit.js"

const RequestId = z.union([z.string(), z.number()])
const RequestsSeenSchema = z.object({
  methods: z.record(z.string(), z.number()),
  inFlight: z.array(RequestId),
  cancelled: z.array(z.object({ requestId: RequestId, reason: z.string().exactOptional() })),
  rootsChanged: z.number()
})

const requestsSeen = async (client: Client): Promise<RequestsSeen> => {
  const result = await client.callTool({ name: "requests_seen" })
  expect(jsonOf(result)).toEqual(result.structuredContent)
  return RequestsSeenSchema.parse(result.structuredContent)
}

describe.each(transportNames)("requests_seen over %s", (transportName) => {
  const { connect } = useFixture(transportName)

  it("counts the requests of each method this instance received, unknown methods included", async () => {
    const client = await connect()
    await client.listTools()
    await client.listPrompts()
    await client.listResources()
    await client.listResourceTemplates()
    await client.readResource({ uri: "fixture://greeting" })
    await client.subscribeResource({ uri: "fixture://greeting" })
    await client.unsubscribeResource({ uri: "fixture://greeting" })
    await client.setLoggingLevel("info")
    await client.ping()
    await client.callTool({ name: "echo", arguments: { text: "one" } })
    await expect(client.request({ method: "fixture/unknown" }, EmptyResultSchema)).rejects.toMatchObject({
      code: -32601,
      message: "MCP error -32601: Method not found"
    })
    const seen = await requestsSeen(client)
    expect(seen).toEqual({
      methods: {
        initialize: 1,
        "tools/list": 1,
        "prompts/list": 1,
        "resources/list": 1,
        "resources/templates/list": 1,
        "resources/read": 1,
        "resources/subscribe": 1,
        "resources/unsubscribe": 1,
        "logging/setLevel": 1,
        ping: 1,
        // echo and this requests_seen call.
        "tools/call": 2,
        "fixture/unknown": 1
      },
      inFlight: [],
      cancelled: [],
      rootsChanged: 0
    })
  })

  it("counts the roots/list_changed notifications it received", async () => {
    const client = await connect({ roots: { listChanged: true } })
    await client.sendRootsListChanged()
    await client.sendRootsListChanged()
    // Notifications are not answered: a request sent after them arrives after them.
    expect((await requestsSeen(client)).rootsChanged).toBe(2)
  })

  it("sees a request in flight, then its cancellation, which still aborts it", async () => {
    const client = await connect()
    const controller = new AbortController()
    const sleeping = client.callTool({ name: "sleep", arguments: { ms: 30_000 } }, undefined, {
      signal: controller.signal
    })
    await expect.poll(async () => (await requestsSeen(client)).inFlight).toHaveLength(1)
    const [sleepId] = (await requestsSeen(client)).inFlight
    expect(sleepId).toBeDefined()

    controller.abort("enough")
    await expect(sleeping).rejects.toThrow("enough")
    // Over HTTP the cancellation is a POST of its own, which may land after the next call.
    await expect
      .poll(async () => (await requestsSeen(client)).cancelled)
      .toEqual([{ requestId: sleepId, reason: "enough" }])
    await expect.poll(async () => (await requestsSeen(client)).inFlight).toEqual([])
    expect(textOf(await client.callTool({ name: "echo", arguments: { text: "still alive" } }))).toBe("still alive")
  })
})

describe("requests_seen with --no-ping", () => {
  it("counts a ping that has no handler, still answered -32601 Method not found", async () => {
    const client = new Client({ name: "fixture-test", version: "1.0.0" })
    try {
      await client.connect(new StdioClientTransport({ ...fixtureStdioConfig(["--no-ping"]), stderr: "ignore" }))
      await expect(client.ping()).rejects.toMatchObject({ code: -32601, message: "MCP error -32601: Method not found" })
      expect((await requestsSeen(client)).methods).toMatchObject({ ping: 1 })
    } finally {
      await client.close()
    }
  })
})
