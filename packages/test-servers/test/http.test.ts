/**
 * The HTTP side of the fixture: session routing of Streamable HTTP (404 for unknown sessions), the
 * in-process crash, and the child-process server that can be killed, stopped and restarted.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { afterEach, describe, expect, it } from "vitest"
import { spawnHttpFixtureServer, startHttpFixtureServer } from "../src/index.js"

const cleanups: Array<() => Promise<unknown>> = []
afterEach(async () => {
  // Clients first, then servers.
  for (const cleanup of cleanups.splice(0).toReversed()) await cleanup().catch(() => {})
})

const connect = async (url: string): Promise<Client> => {
  const client = new Client({ name: "fixture-test", version: "1.0.0" })
  cleanups.push(() => client.close())
  await client.connect(new StreamableHTTPClientTransport(new URL(url)))
  return client
}

const initialize = {
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "1" } }
}
const post = (url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> =>
  fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers },
    body: JSON.stringify(body)
  })

describe("in-process HTTP fixture server", () => {
  it("answers an unknown session id with 404 and a JSON-RPC error body", async () => {
    const server = await startHttpFixtureServer()
    cleanups.push(() => server.close())
    const listTools = { jsonrpc: "2.0", id: 2, method: "tools/list", params: {} }
    const response = await post(server.url, listTools, { "mcp-session-id": "no-such-session" })
    expect(response.status).toBe(404)
    expect(await response.json()).toEqual({
      jsonrpc: "2.0",
      error: { code: -32001, message: "Session not found" },
      id: null
    })
    const get = await fetch(server.url, {
      headers: { "mcp-session-id": "no-such-session", accept: "text/event-stream" }
    })
    expect(get.status).toBe(404)
    await get.body?.cancel()
    const messages = await post(`${server.sseUrl.replace(/\/sse$/, "/messages")}?sessionId=nope`, listTools)
    expect(messages.status).toBe(404)
    await messages.body?.cancel()
    // No session id and not an initialize request.
    const noSession = await post(server.url, listTools)
    expect(noSession.status).toBe(400)
    await noSession.body?.cancel()
  })

  it("gives each client its own session, and a terminated session id gets 404", async () => {
    const server = await startHttpFixtureServer()
    cleanups.push(() => server.close())
    const a = await post(server.url, initialize)
    const b = await post(server.url, initialize)
    expect(a.status).toBe(200)
    const idA = a.headers.get("mcp-session-id")
    const idB = b.headers.get("mcp-session-id")
    await a.body?.cancel()
    await b.body?.cancel()
    expect(idA).toMatch(/.+/)
    expect(idB).toMatch(/.+/)
    expect(idA).not.toBe(idB)

    const client = await connect(server.url)
    const transport = client.transport
    if (!(transport instanceof StreamableHTTPClientTransport)) throw new Error("unexpected transport")
    const sessionId = transport.sessionId
    expect(sessionId).toMatch(/.+/)
    await transport.terminateSession()
    const after = await post(
      server.url,
      { jsonrpc: "2.0", id: 3, method: "tools/list", params: {} },
      {
        "mcp-session-id": sessionId ?? "",
        "mcp-protocol-version": "2025-06-18"
      }
    )
    expect(after.status).toBe(404)
    await after.body?.cancel()
  })

  it("crash closes the whole in-process server instead of exiting the host", async () => {
    const server = await startHttpFixtureServer()
    cleanups.push(() => server.close())
    const client = await connect(server.url)
    const other = await connect(server.url)
    await expect(client.callTool({ name: "crash" }, undefined, { timeout: 5000 })).rejects.toThrow()
    await expect(other.callTool({ name: "pid" }, undefined, { timeout: 5000 })).rejects.toThrow()
    await expect(fetch(server.url, { method: "POST", body: "{}" })).rejects.toThrow()
    // And a new one can listen on the same port.
    const again = await startHttpFixtureServer({ port: server.port })
    cleanups.push(() => again.close())
    const fresh = await connect(again.url)
    expect((await fresh.callTool({ name: "pid" })).content).toEqual([{ type: "text", text: String(process.pid) }])
  })

  it("close is idempotent", async () => {
    const server = await startHttpFixtureServer()
    await connect(server.url)
    await Promise.all([server.close(), server.close()])
    await server.close()
  })
})

describe("child-process HTTP fixture server", () => {
  it("serves from another process and restarts on the same port", async () => {
    const first = await spawnHttpFixtureServer()
    cleanups.push(() => first.stop())
    expect(first.url).toBe(`http://127.0.0.1:${first.port}/mcp`)
    expect(first.sseUrl).toBe(`http://127.0.0.1:${first.port}/sse`)
    expect(first.pid).not.toBe(process.pid)
    const client = await connect(first.url)
    const pidText = (await client.callTool({ name: "pid" })).content
    expect(pidText).toEqual([{ type: "text", text: String(first.pid) }])

    await Promise.all([first.stop(), first.stop()])
    await first.stop()
    expect(await first.exited).toBe(0)
    await expect(client.callTool({ name: "pid" }, undefined, { timeout: 5000 })).rejects.toThrow()

    const second = await spawnHttpFixtureServer({ port: first.port })
    cleanups.push(() => second.stop())
    expect(second.port).toBe(first.port)
    expect(second.pid).not.toBe(first.pid)
    const again = await connect(second.url)
    expect((await again.callTool({ name: "pid" })).content).toEqual([{ type: "text", text: String(second.pid) }])
  })

  it("kill ends it with a signal; crash exits with the given code", async () => {
    const killed = await spawnHttpFixtureServer()
    cleanups.push(() => killed.stop())
    killed.kill("SIGKILL")
    expect(await killed.exited).toBeNull()
    await killed.stop()

    const crashing = await spawnHttpFixtureServer()
    cleanups.push(() => crashing.stop())
    const client = await connect(crashing.url)
    await expect(
      client.callTool({ name: "crash", arguments: { code: 7 } }, undefined, { timeout: 5000 })
    ).rejects.toThrow()
    expect(await crashing.exited).toBe(7)
  })

  it("rejects when the port is taken", async () => {
    const holder = await startHttpFixtureServer()
    cleanups.push(() => holder.close())
    await expect(spawnHttpFixtureServer({ port: holder.port })).rejects.toThrow(/EADDRINUSE/)
  })
})
