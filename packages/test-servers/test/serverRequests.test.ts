/**
 * The fixture's requests from server to client (elicit, sample, roots) answered by the SDK's `Client`
 * over stdio, Streamable HTTP and legacy SSE, and refused by a client without the capability.
 */
import {
  CreateMessageRequestSchema,
  ElicitationCompleteNotificationSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema
} from "@modelcontextprotocol/sdk/types.js"
import type { CreateMessageRequest, ElicitRequest, ElicitResult } from "@modelcontextprotocol/sdk/types.js"
import { describe, expect, it } from "vitest"
import { ELICIT_DEFAULT_URL, elicitFormDefaults, SAMPLE_DEFAULT_MAX_TOKENS } from "../src/index.js"
import { allCapabilities, jsonOf, latch, textOf, transportNames, useFixture } from "./kit.js"

/** The default of each field of a form elicitation, by field name. */
const defaultsOf = (params: ElicitRequest["params"]): Record<string, unknown> =>
  "requestedSchema" in params
    ? Object.fromEntries(Object.entries(params.requestedSchema.properties).map(([key, field]) => [key, field.default]))
    : {}

describe.each(transportNames)("server-to-client requests over %s", (transportName) => {
  const { connect } = useFixture(transportName)

  it("elicit sends a form with a default for each primitive kind and returns the client's answer", async () => {
    const client = await connect(allCapabilities)
    const received: Array<ElicitRequest["params"]> = []
    client.setRequestHandler(ElicitRequestSchema, (request) => {
      received.push(request.params)
      return { action: "accept", content: { ...elicitFormDefaults, name: "filled" } }
    })
    const result = await client.callTool({ name: "elicit", arguments: { message: "who are you?" } })
    const answer: ElicitResult = { action: "accept", content: { ...elicitFormDefaults, name: "filled" } }
    expect(result.isError).toBeFalsy()
    expect(result.structuredContent).toEqual({ result: answer })
    expect(jsonOf(result)).toEqual(answer)

    expect(received).toHaveLength(1)
    const [params] = received
    if (params === undefined) throw new Error("no elicitation")
    expect(params).toMatchObject({ mode: "form", message: expect.stringContaining("who are you?") })
    expect(defaultsOf(params)).toEqual(elicitFormDefaults)
    expect("requestedSchema" in params && params.requestedSchema.properties).toMatchObject({
      name: { type: "string" },
      count: { type: "integer" },
      ratio: { type: "number" },
      color: { type: "string", enum: expect.arrayContaining([elicitFormDefaults.color]) },
      confirm: { type: "boolean" }
    })
  })

  it("elicit's defaults are what a client that applies defaults answers with", async () => {
    const client = await connect({ ...allCapabilities, elicitation: { form: { applyDefaults: true } } })
    client.setRequestHandler(ElicitRequestSchema, () => ({ action: "accept", content: {} }))
    const result = await client.callTool({ name: "elicit" })
    expect(result.structuredContent).toEqual({ result: { action: "accept", content: elicitFormDefaults } })
  })

  it("two callers' elicitations reach the client each with its own message and get their own answers", async () => {
    const client = await connect(allCapabilities)
    const messages: Array<string> = []
    const bothArrived = latch()
    client.setRequestHandler(ElicitRequestSchema, async (request) => {
      messages.push(request.params.message)
      // Answer the first only once the second has arrived: both are pending at once.
      if (messages.length === 2) bothArrived.open()
      await bothArrived.done
      return { action: "accept", content: { name: request.params.message } }
    })
    const [a, b] = await Promise.all([
      client.callTool({ name: "elicit", arguments: { message: "caller A" } }),
      client.callTool({ name: "elicit", arguments: { message: "caller B" } })
    ])
    expect(a?.structuredContent).toEqual({ result: { action: "accept", content: { name: "caller A" } } })
    expect(b?.structuredContent).toEqual({ result: { action: "accept", content: { name: "caller B" } } })
    expect(messages.toSorted()).toEqual(["caller A", "caller B"])
  })

  it("cancelling an elicit call cancels its elicitation at the client", async () => {
    const client = await connect(allCapabilities)
    const asked = latch()
    const reasons: Array<unknown> = []
    let calls = 0
    client.setRequestHandler(ElicitRequestSchema, (_request, extra) => {
      // The first is answered at once, so the one cancelled is not the server's request id 0: SDK
      // 1.32.2's Protocol ignores a notifications/cancelled for id 0 (`if (!requestId) return`).
      if (++calls === 1) return { action: "decline" }
      return new Promise<ElicitResult>((_resolve, reject) => {
        extra.signal.addEventListener("abort", () => {
          reasons.push(extra.signal.reason)
          reject(new Error("elicitation cancelled"))
        })
        asked.open()
      })
    })
    expect((await client.callTool({ name: "elicit" })).structuredContent).toEqual({ result: { action: "decline" } })
    const controller = new AbortController()
    const call = client.callTool({ name: "elicit" }, undefined, { signal: controller.signal })
    await asked.done
    controller.abort("caller gave up")
    await expect(call).rejects.toThrow("caller gave up")
    // The server cancels its own request with the reason its call was cancelled with.
    await expect.poll(() => reasons).toEqual(["caller gave up"])
  })

  it("elicit in URL mode sends a url and an elicitationId, then notifies its completion", async () => {
    const client = await connect(allCapabilities)
    const received: Array<ElicitRequest["params"]> = []
    client.setRequestHandler(ElicitRequestSchema, (request) => {
      received.push(request.params)
      return { action: "accept" }
    })
    const completed: Array<string> = []
    client.setNotificationHandler(ElicitationCompleteNotificationSchema, (notification) => {
      completed.push(notification.params.elicitationId)
    })
    const result = await client.callTool({ name: "elicit", arguments: { mode: "url", message: "open it" } })
    expect(result.isError).toBeFalsy()
    const [params] = received
    if (params === undefined || params.mode !== "url") throw new Error(`no URL elicitation: ${JSON.stringify(params)}`)
    expect(params).toMatchObject({ url: ELICIT_DEFAULT_URL, message: "open it" })
    expect(result.structuredContent).toEqual({ result: { action: "accept" }, elicitationId: params.elicitationId })
    // Related to the call: it travels before the call's answer on the same stream.
    expect(completed).toEqual([params.elicitationId])

    const own = await client.callTool({
      name: "elicit",
      arguments: { mode: "url", url: "https://example.org/consent" }
    })
    expect(own.isError).toBeFalsy()
    expect(received[1]).toMatchObject({ mode: "url", url: "https://example.org/consent" })
  })

  it("sample sends sampling/createMessage with the prompt and returns the client's answer", async () => {
    const client = await connect(allCapabilities)
    const received: Array<CreateMessageRequest["params"]> = []
    const answer = {
      model: "fixture-model",
      role: "assistant" as const,
      content: { type: "text" as const, text: "sampled" }
    }
    client.setRequestHandler(CreateMessageRequestSchema, (request) => {
      received.push(request.params)
      return answer
    })
    const result = await client.callTool({ name: "sample", arguments: { prompt: "say hi", maxTokens: 7 } })
    expect(result.structuredContent).toEqual({ result: answer })
    expect(jsonOf(result)).toEqual(answer)
    expect(received).toEqual([
      expect.objectContaining({ messages: [{ role: "user", content: { type: "text", text: "say hi" } }], maxTokens: 7 })
    ])
    await client.callTool({ name: "sample", arguments: { prompt: "again" } })
    expect(received[1]?.maxTokens).toBe(SAMPLE_DEFAULT_MAX_TOKENS)
  })

  it("roots sends roots/list and returns the client's answer", async () => {
    const client = await connect(allCapabilities)
    const roots = [{ uri: "file:///tmp/fixture-root", name: "fixture root" }]
    let asked = 0
    client.setRequestHandler(ListRootsRequestSchema, () => {
      asked++
      return { roots }
    })
    const result = await client.callTool({ name: "roots" })
    expect(result.structuredContent).toEqual({ result: { roots } })
    expect(jsonOf(result)).toEqual({ roots })
    expect(asked).toBe(1)
  })

  it("without the capabilities, each tool answers a tool error with the client's refusal", async () => {
    const client = await connect()
    // The SDK server sends anyway (no enforceStrictCapabilities); the client has no handler.
    for (const [name, args] of [
      ["elicit", {}],
      ["elicit", { mode: "url" }],
      ["sample", { prompt: "hi" }],
      ["roots", {}]
    ] as const) {
      const result = await client.callTool({ name, arguments: args })
      expect(result.isError).toBe(true)
      expect(textOf(result)).toBe("MCP error -32601: Method not found")
    }
  })

  it("a client with form elicitation only refuses a URL elicitation", async () => {
    const client = await connect({ elicitation: { form: {} } })
    client.setRequestHandler(ElicitRequestSchema, () => ({ action: "decline" }))
    const url = await client.callTool({ name: "elicit", arguments: { mode: "url" } })
    expect(url.isError).toBe(true)
    // The client's own McpError message already says "MCP error -32602: ", and the SDK prefixes it again.
    expect(textOf(url)).toMatch(/^MCP error -32602: .*Client does not support URL-mode elicitation requests$/)
    const form = await client.callTool({ name: "elicit" })
    expect(form.structuredContent).toEqual({ result: { action: "decline" } })
  })
})
