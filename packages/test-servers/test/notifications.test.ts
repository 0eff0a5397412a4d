/**
 * The fixture's notifications to the client (list changes, log messages, resource updates) and the
 * capabilities that announce them, received by the SDK's `Client` over stdio, Streamable HTTP and SSE.
 */
import {
  LoggingLevelSchema,
  LoggingMessageNotificationSchema,
  PromptListChangedNotificationSchema,
  ResourceListChangedNotificationSchema,
  ResourceUpdatedNotificationSchema,
  ToolListChangedNotificationSchema
} from "@modelcontextprotocol/sdk/types.js"
import type { LoggingMessageNotification } from "@modelcontextprotocol/sdk/types.js"
import { describe, expect, it } from "vitest"
import { LOGGER_NAME } from "../src/index.js"
import { textOf, transportNames, useFixture } from "./kit.js"

const levels = LoggingLevelSchema.options

describe.each(transportNames)("server notifications over %s", (transportName) => {
  const { connect } = useFixture(transportName)

  it("declares logging, list changes and resource subscriptions", async () => {
    const client = await connect()
    expect(client.getServerCapabilities()).toEqual({
      tools: { listChanged: true },
      resources: { subscribe: true, listChanged: true },
      prompts: { listChanged: true },
      completions: {},
      logging: {}
    })
  })

  it("add_tool and remove_tool change the tool list, and the server says so", async () => {
    const client = await connect()
    let changes = 0
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      changes++
    })
    expect(textOf(await client.callTool({ name: "add_tool", arguments: { name: "added" } }))).toBe("added added")
    await expect.poll(() => changes).toBe(1)
    expect((await client.listTools()).tools.map((tool) => tool.name)).toContain("added")
    expect(textOf(await client.callTool({ name: "added", arguments: { text: "from added" } }))).toBe("from added")

    const twice = await client.callTool({ name: "add_tool", arguments: { name: "added" } })
    expect(twice.isError).toBe(true)
    expect(textOf(twice)).toBe("Tool added is already registered")
    const builtIn = await client.callTool({ name: "remove_tool", arguments: { name: "echo" } })
    expect(builtIn.isError).toBe(true)

    expect(textOf(await client.callTool({ name: "remove_tool", arguments: { name: "added" } }))).toBe("removed added")
    await expect.poll(() => changes).toBe(2)
    expect((await client.listTools()).tools.map((tool) => tool.name)).not.toContain("added")
    expect((await client.callTool({ name: "added", arguments: { text: "gone" } })).isError).toBe(true)
  })

  it("notify sends each kind of list_changed", async () => {
    const client = await connect()
    const received: Array<string> = []
    client.setNotificationHandler(ToolListChangedNotificationSchema, (n) => void received.push(n.method))
    client.setNotificationHandler(PromptListChangedNotificationSchema, (n) => void received.push(n.method))
    client.setNotificationHandler(ResourceListChangedNotificationSchema, (n) => void received.push(n.method))
    for (const kind of ["tools", "prompts", "resources"]) {
      const result = await client.callTool({ name: "notify", arguments: { kind } })
      expect(textOf(result)).toBe(`sent notifications/${kind}/list_changed`)
      await expect.poll(() => received.at(-1)).toBe(`notifications/${kind}/list_changed`)
    }
    expect(received).toEqual([
      "notifications/tools/list_changed",
      "notifications/prompts/list_changed",
      "notifications/resources/list_changed"
    ])
  })

  it("log sends every level in order, and logging/setLevel filters what follows", async () => {
    const client = await connect()
    const messages: Array<LoggingMessageNotification["params"]> = []
    client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void messages.push(n.params))
    const dataOf = (data: string) => messages.filter((m) => m.data === data)

    const all = await client.callTool({ name: "log", arguments: { message: "first" } })
    expect(all.structuredContent).toEqual({ attempted: levels, sent: levels, level: null })
    await expect.poll(() => dataOf("first").length).toBe(levels.length)
    expect(dataOf("first")).toEqual(levels.map((level) => ({ level, logger: LOGGER_NAME, data: "first" })))

    await client.setLoggingLevel("error")
    const filtered = await client.callTool({ name: "log", arguments: { message: "second" } })
    const kept = ["error", "critical", "alert", "emergency"]
    expect(filtered.structuredContent).toEqual({ attempted: levels, sent: kept, level: "error" })
    const one = await client.callTool({ name: "log", arguments: { level: "debug", message: "dropped" } })
    expect(one.structuredContent).toEqual({ attempted: ["debug"], sent: [], level: "error" })
    await client.callTool({ name: "log", arguments: { level: "emergency", message: "last" } })
    // Messages arrive in order on one stream: once "last" is in, nothing dropped can still come.
    await expect.poll(() => dataOf("last").length).toBe(1)
    expect(dataOf("second").map((m) => m.level)).toEqual(kept)
    expect(dataOf("dropped")).toEqual([])
  })

  it("resources/subscribe makes update_resource notify, until resources/unsubscribe", async () => {
    const client = await connect()
    const updated: Array<string> = []
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void updated.push(n.params.uri))
    const subscriptions = async (): Promise<unknown> =>
      (await client.callTool({ name: "subscriptions" })).structuredContent

    expect(await subscriptions()).toEqual({ uris: [] })
    const notYet = await client.callTool({ name: "update_resource", arguments: { uri: "fixture://greeting" } })
    expect(textOf(notYet)).toBe("not subscribed")

    await client.subscribeResource({ uri: "fixture://greeting" })
    await client.subscribeResource({ uri: "fixture://items/2" })
    const listed = await client.callTool({ name: "subscriptions" })
    expect(listed.structuredContent).toEqual({ uris: ["fixture://greeting", "fixture://items/2"] })
    expect(JSON.parse(textOf(listed))).toEqual(["fixture://greeting", "fixture://items/2"])

    const sent = await client.callTool({ name: "update_resource", arguments: { uri: "fixture://items/2" } })
    expect(textOf(sent)).toBe("sent")
    await expect.poll(() => updated).toEqual(["fixture://items/2"])

    await client.unsubscribeResource({ uri: "fixture://items/2" })
    expect(await subscriptions()).toEqual({ uris: ["fixture://greeting"] })
    const after = await client.callTool({ name: "update_resource", arguments: { uri: "fixture://items/2" } })
    expect(textOf(after)).toBe("not subscribed")
    await client.callTool({ name: "update_resource", arguments: { uri: "fixture://greeting" } })
    // In order on one stream: once the greeting's update is in, the unsubscribed one did not come.
    await expect.poll(() => updated).toEqual(["fixture://items/2", "fixture://greeting"])
  })
})
