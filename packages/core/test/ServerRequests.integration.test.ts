/**
 * What a server asks its client (elicitation, sampling, roots) through the pool: over stdio and
 * Streamable HTTP, through pools of one and several connections, several calls in flight, each
 * request answered by the handler of the call it belongs to when the pool can know it, else by
 * the server's; never by another caller's.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { McpError } from "@modelcontextprotocol/sdk/types.js"
import { describe, expect, it } from "vitest"
import { elicitFormDefaults, fixtureStdioConfig } from "@mcp-pool/test-servers"
import { createMcpConnectionManager, type ServerRequests } from "../src/index.js"
import { promiseSuite, quickDefaults, until } from "./promiseKit.js"
import { text } from "./support.js"

const suite = promiseSuite()
const defaults = quickDefaults
const transports = suite.transports

const start = async (
  server: unknown,
  pool: Record<string, unknown>,
  handlers: ServerRequests.Handlers | undefined,
  serverHandlers?: ServerRequests.Handlers
) => {
  const manager = await createMcpConnectionManager({
    servers: { fx: server },
    defaults: { ...defaults, ...pool },
    ...(handlers === undefined ? {} : { handlers }),
    ...(serverHandlers === undefined ? {} : { serverHandlers: { fx: serverHandlers } })
  })
  return suite.keep(manager)
}

/** The `result` the fixture's server-request tools answer with: what the client's handler said. */
const answerOf = (result: object): Record<string, unknown> => {
  const structured = (result as { readonly structuredContent?: { readonly result?: Record<string, unknown> } })
    .structuredContent
  if (structured?.result === undefined) throw new Error(`no answer in ${JSON.stringify(result)}`)
  return structured.result
}

/** The `elicitationId` the fixture's `elicit` tool reports for a URL-mode elicitation. */
const idOf = (result: object): string | undefined =>
  (result as { readonly structuredContent?: { readonly elicitationId?: string } }).structuredContent?.elicitationId

/** A promise and its resolver, to hold handlers until every caller has been asked. */
const gate = () => {
  const state: { release: () => void } = { release: () => {} }
  const opened = new Promise<void>((resolve) => {
    state.release = resolve
  })
  return { open: () => state.release(), opened }
}

const sampled = (reply: string) => ({
  role: "assistant" as const,
  model: "test-model",
  content: { type: "text" as const, text: reply }
})

/** Starts a manager with these options and closes it again: the error it was refused with, if any. */
const refusal = (options: Record<string, unknown>) =>
  createMcpConnectionManager({
    servers: { fx: fixtureStdioConfig() },
    defaults: { ...defaults, minConnections: 0 },
    ...options
  }).then(
    async (manager) => {
      await manager.close()
      return undefined
    },
    (error: unknown) => error
  )

describe.each(Object.entries(transports))("server requests over %s", (_name, config) => {
  describe.each([1, 3])("through a pool of %i", (size) => {
    it("answers elicitation (with the form's defaults), sampling and roots for several calls in flight", async () => {
      const asked: Array<string> = []
      const manager = await start(
        config(),
        { minConnections: size, maxConnections: size },
        {
          // Only `name` is answered: the other fields get the defaults of the server's form.
          elicitation: (params) => {
            asked.push(params.message)
            return { action: "accept", content: { name: params.message } }
          },
          sampling: async (params) => {
            const first = params.messages[0]?.content
            return sampled(`echo: ${first !== undefined && "text" in first ? String(first.text) : ""}`)
          },
          roots: () => ({ roots: [{ uri: "file:///work", name: "work" }] })
        }
      )
      const tools = manager.tools("fx")
      const messages = Array.from({ length: 6 }, (_, i) => `caller ${i}`)
      const [elicited, samples, roots] = await Promise.all([
        Promise.all(messages.map((message) => tools.callTool({ name: "elicit", arguments: { message } }))),
        Promise.all(messages.map((prompt) => tools.callTool({ name: "sample", arguments: { prompt } }))),
        Promise.all(messages.map(() => tools.callTool({ name: "roots", arguments: {} })))
      ])
      expect(elicited.map(answerOf)).toEqual(
        messages.map((message) => ({ action: "accept", content: { ...elicitFormDefaults, name: message } }))
      )
      expect(samples.map((result) => answerOf(result).content)).toEqual(
        messages.map((prompt) => ({ type: "text", text: `echo: ${prompt}` }))
      )
      expect(roots.map(answerOf)).toEqual(messages.map(() => ({ roots: [{ uri: "file:///work", name: "work" }] })))
      expect(asked.toSorted()).toEqual(messages)
    })

    it("a call's own handler answers what its call caused; the server's handler is not asked", async () => {
      const serverLevel: Array<string> = []
      const manager = await start(
        config(),
        { minConnections: size, maxConnections: size },
        {
          elicitation: (params) => {
            serverLevel.push(params.message)
            return { action: "decline" }
          }
        }
      )
      const tools = manager.tools("fx")
      const contexts: Array<ServerRequests.HandlerContext> = []
      const calls = Array.from({ length: 4 }, (_, i) =>
        tools.callTool({ name: "elicit", arguments: { message: `own ${i}` } }, undefined, {
          handlers: {
            elicitation: (params, context) => {
              contexts.push(context)
              return { action: "accept", content: { name: `answered ${params.message}` } }
            }
          }
        })
      )
      const results = (await Promise.all(calls)).map(answerOf)
      expect(results.map((r) => (r.content as { readonly name: string }).name)).toEqual(
        [0, 1, 2, 3].map((i) => `answered own ${i}`)
      )
      expect(serverLevel).toEqual([])
      expect(contexts.map((c) => [c.serverName, c.call?.method, c.call?.target])).toEqual(
        [0, 1, 2, 3].map(() => ["fx", "tools/call", "elicit"])
      )
    })
  })

  it("a handler that throws gives the server a JSON-RPC error, not its message; the call and the pool go on", async () => {
    const manager = await start(
      config(),
      { minConnections: 1, maxConnections: 1 },
      {
        sampling: () => {
          throw new Error("the model's API key sk-live-123 was refused")
        }
      }
    )
    const tools = manager.tools("fx")
    const result = await tools.callTool({ name: "sample", arguments: { prompt: "hi" } })
    expect(result.isError).toBe(true)
    expect(text(result)).toContain("the client's sampling handler failed")
    expect(text(result)).not.toContain("sk-live-123")
    expect(text(await tools.callTool({ name: "echo", arguments: { text: "still here" } }))).toBe("still here")
    expect((await manager.pool("fx")).connections).toHaveLength(1)
  })

  it("a handler's McpError reaches the server as it is", async () => {
    const manager = await start(
      config(),
      { minConnections: 1, maxConnections: 1 },
      {
        roots: () => Promise.reject(new McpError(-32000, "no roots for you"))
      }
    )
    const result = await manager.tools("fx").callTool({ name: "roots", arguments: {} })
    expect(result.isError).toBe(true)
    expect(text(result)).toContain("no roots for you")
  })

  it("a handler slower than its call's time gives the server a timeout error before the call's own timeout", async () => {
    const manager = await start(
      config(),
      // 5 s leaves the server half a second (a tenth) to answer the call once the handler's time
      // is up: with 2 s, a busy machine sometimes took more than the 200 ms left.
      { minConnections: 1, maxConnections: 1, requestTimeout: 5 },
      {
        elicitation: (_params, context) =>
          new Promise((resolve) => {
            // Never answers by itself: it ends when the pool gives up on it.
            context.signal.addEventListener("abort", () => resolve({ action: "cancel" }))
          })
      }
    )
    const tools = manager.tools("fx")
    const result = await tools.callTool({ name: "elicit", arguments: {} })
    expect(result.isError).toBe(true)
    expect(text(result)).toMatch(/the client's elicitation handler did not answer within \d+ ms/)
    expect(text(await tools.callTool({ name: "echo", arguments: { text: "next" } }))).toBe("next")
  })

  it("a URL-mode elicitation's completion reaches the handlers that answered it, else the server's", async () => {
    const told: Array<string> = []
    const manager = await start(
      config(),
      { minConnections: 1, maxConnections: 1 },
      {
        elicitation: () => ({ action: "accept" }),
        elicitationComplete: (params, context) => {
          told.push(`server ${params.elicitationId} ${context.serverName}`)
        }
      }
    )
    const tools = manager.tools("fx")
    // The call's own handlers answered: they are told.
    const own = await tools.callTool({ name: "elicit", arguments: { mode: "url" } }, undefined, {
      handlers: {
        elicitation: () => ({ action: "accept" }),
        elicitationComplete: (params) => {
          told.push(`call ${params.elicitationId}`)
        }
      }
    })
    const ownId = idOf(own)
    expect(ownId).toEqual(expect.any(String))
    await until(() => told.length === 1, "the call's completion")
    expect(told).toEqual([`call ${ownId}`])
    // The server's handlers answered: the server's handler is told, with the server's name.
    const served = idOf(await tools.callTool({ name: "elicit", arguments: { mode: "url" } }))
    await until(() => told.length === 2, "the server's completion")
    expect(told[1]).toBe(`server ${served} fx`)
    // A call whose handlers answer but cannot be told: the server's handler is.
    const plain = await tools.callTool({ name: "elicit", arguments: { mode: "url" } }, undefined, {
      handlers: { elicitation: () => ({ action: "accept" }) }
    })
    await until(() => told.length === 3, "the fallback completion")
    expect(told[2]).toBe(`server ${idOf(plain)} fx`)
  })

  it("a completion handler that throws is logged; the call and the connection go on", async () => {
    const manager = await start(
      config(),
      { minConnections: 1, maxConnections: 1 },
      {
        elicitation: () => ({ action: "accept" }),
        elicitationComplete: () => {
          throw new Error("no one to tell")
        }
      }
    )
    const tools = manager.tools("fx")
    const result = await tools.callTool({ name: "elicit", arguments: { mode: "url" } })
    expect(answerOf(result)).toEqual({ action: "accept" })
    expect(text(await tools.callTool({ name: "echo", arguments: { text: "next" } }))).toBe("next")
    expect((await manager.pool("fx")).connections).toHaveLength(1)
  })

  it("a handler may answer with an Effect", async () => {
    const { Effect } = await import("effect")
    const manager = await start(
      config(),
      { minConnections: 1, maxConnections: 1 },
      {
        roots: () => Effect.succeed({ roots: [{ uri: "file:///from-effect" }] })
      }
    )
    const result = await manager.tools("fx").callTool({ name: "roots", arguments: {} })
    expect(answerOf(result)).toEqual({ roots: [{ uri: "file:///from-effect" }] })
  })
})

describe("attribution on a shared connection", () => {
  it("Streamable HTTP: two callers in flight on one connection each get only their own elicitation", async () => {
    const serverLevel: Array<string> = []
    const manager = await start(
      { type: "http", url: suite.httpUrl() },
      { minConnections: 1, maxConnections: 1, maxConcurrentRequestsPerConnection: 2 },
      {
        elicitation: (params) => {
          serverLevel.push(params.message)
          return { action: "decline" }
        }
      }
    )
    const tools = manager.tools("fx")
    const bothAsked = gate()
    const seen: Record<string, Array<string>> = { a: [], b: [] }
    const caller = (who: "a" | "b") =>
      tools.callTool({ name: "elicit", arguments: { message: `for ${who}` } }, undefined, {
        handlers: {
          elicitation: async (params) => {
            seen[who]?.push(params.message)
            if (seen.a?.length === 1 && seen.b?.length === 1) bothAsked.open()
            // Both requests are pending at once: neither was answered before the other was asked.
            await bothAsked.opened
            return { action: "accept", content: { name: who } }
          }
        }
      })
    const [a, b] = await Promise.all([caller("a"), caller("b")])
    expect(seen).toEqual({ a: ["for a"], b: ["for b"] })
    expect((answerOf(a ?? {}).content as { readonly name: string }).name).toBe("a")
    expect((answerOf(b ?? {}).content as { readonly name: string }).name).toBe("b")
    expect(serverLevel).toEqual([])
    const details = await manager.pool("fx")
    expect(details.connections).toHaveLength(1)
  })

  it("stdio: with two calls in flight on one connection, the server's handler answers both", async () => {
    const serverLevel: Array<string> = []
    const bothAsked = gate()
    const manager = await start(
      fixtureStdioConfig(),
      { minConnections: 1, maxConnections: 1, maxConcurrentRequestsPerConnection: 2 },
      {
        elicitation: async (params, context) => {
          serverLevel.push(params.message)
          expect(context.call).toBeUndefined()
          if (serverLevel.length === 2) bothAsked.open()
          await bothAsked.opened
          return { action: "accept", content: { name: "server" } }
        }
      }
    )
    const tools = manager.tools("fx")
    const own: Array<string> = []
    const caller = (who: string) =>
      tools.callTool({ name: "elicit", arguments: { message: `for ${who}` } }, undefined, {
        handlers: {
          elicitation: (params) => {
            own.push(params.message)
            return { action: "accept", content: { name: who } }
          }
        }
      })
    const results = await Promise.all([caller("a"), caller("b")])
    expect(own).toEqual([])
    expect(serverLevel.toSorted()).toEqual(["for a", "for b"])
    expect(results.map((r) => (answerOf(r).content as { readonly name: string }).name)).toEqual(["server", "server"])
  })
})

describe("roots that changed", () => {
  it("sendRootsListChanged tells every open connection of the pool", async () => {
    const manager = await start(
      fixtureStdioConfig(),
      { minConnections: 2, maxConnections: 2 },
      {
        roots: () => ({ roots: [{ uri: "file:///work" }] })
      }
    )
    const tools = manager.tools("fx")
    await until(async () => (await manager.pool("fx")).connections.length === 2, "both connections are open")
    await tools.sendRootsListChanged()
    // One call on each connection (a server with handlers over stdio carries one call at a time).
    const seen = await Promise.all(
      [0, 1].map(() => tools.callTool({ name: "requests_seen", arguments: {} }, undefined, { timeout: 10_000 }))
    )
    expect(seen.map((result) => (result.structuredContent as { readonly rootsChanged: number }).rootsChanged)).toEqual([
      1, 1
    ])
    const pids = new Set((await manager.pool("fx")).connections.map((c) => c.pid))
    expect(pids.size).toBe(2)
  })
})

describe("what is advertised", () => {
  it("with no handler, the server gets what a Client without the capability gives it", async () => {
    const raw = new Client({ name: "reference", version: "1.0.0" })
    const fixture = fixtureStdioConfig()
    await raw.connect(new StdioClientTransport({ command: fixture.command, args: [...(fixture.args ?? [])] }))
    try {
      const manager = await start(fixture, { minConnections: 1, maxConnections: 1 }, undefined)
      const tools = manager.tools("fx")
      for (const name of ["elicit", "sample", "roots"]) {
        const params = name === "sample" ? { prompt: "p" } : {}
        const reference = await raw.callTool({ name, arguments: params })
        const pooled = await tools.callTool({ name, arguments: params })
        expect(reference.isError).toBe(true)
        expect(pooled).toEqual(reference)
      }
      // A call's handlers do not advertise anything: the server still gets the same answer.
      const pooled = await tools.callTool({ name: "roots", arguments: {} }, undefined, {
        handlers: { roots: () => ({ roots: [] }) }
      })
      expect(pooled).toEqual(await raw.callTool({ name: "roots", arguments: {} }))
    } finally {
      await raw.close()
    }
  })

  it("a server's own handler is used over the manager's, and only that server advertises it", async () => {
    const manager = await createMcpConnectionManager({
      servers: { a: fixtureStdioConfig(), b: fixtureStdioConfig() },
      defaults: { ...defaults, minConnections: 1, maxConnections: 1 },
      handlers: { roots: () => ({ roots: [{ uri: "file:///manager" }] }) },
      serverHandlers: {
        a: { roots: () => ({ roots: [{ uri: "file:///a" }] }), sampling: () => sampled("from a") }
      }
    })
    suite.keep(manager)
    expect(answerOf(await manager.tools("a").callTool({ name: "roots", arguments: {} }))).toEqual({
      roots: [{ uri: "file:///a" }]
    })
    expect(answerOf(await manager.tools("b").callTool({ name: "roots", arguments: {} }))).toEqual({
      roots: [{ uri: "file:///manager" }]
    })
    expect(answerOf(await manager.tools("a").callTool({ name: "sample", arguments: { prompt: "x" } })).model).toBe(
      "test-model"
    )
    expect((await manager.tools("b").callTool({ name: "sample", arguments: { prompt: "x" } })).isError).toBe(true)
  })

  it("handlers that are not functions, of unknown kinds, or for unknown servers are refused by name", async () => {
    expect(await refusal({ handlers: { elicitation: "yes" } })).toMatchObject({
      _tag: "MCPConfigError",
      message: expect.stringContaining("handlers.elicitation")
    })
    expect(await refusal({ handlers: { completion: () => ({}) } })).toMatchObject({
      _tag: "MCPConfigError",
      message: expect.stringContaining("completion")
    })
    expect(await refusal({ handlers: { elicitationComplete: 42 } })).toMatchObject({
      _tag: "MCPConfigError",
      message: expect.stringContaining("handlers.elicitationComplete")
    })
    expect(await refusal({ handlers: { elicitationComplete: () => {} } })).toBeUndefined()
    expect(await refusal({ serverHandlers: { nope: { roots: () => ({ roots: [] }) } } })).toMatchObject({
      _tag: "MCPConfigError",
      message: expect.stringContaining("nope")
    })
  })
})

describe("server-everything, a server nobody here wrote", () => {
  it("its sampling and elicitation triggers reach the handlers", async () => {
    const { serverEverythingStdioConfig } = await import("@mcp-pool/test-servers")
    const prompts: Array<string> = []
    const manager = await start(
      serverEverythingStdioConfig(),
      { minConnections: 1, maxConnections: 2 },
      {
        sampling: (params) => {
          const first = params.messages[0]?.content
          prompts.push(first !== undefined && "text" in first ? String(first.text) : "")
          return sampled("sampled by the pool's handler")
        },
        elicitation: () => ({ action: "decline" })
      }
    )
    const tools = manager.tools("fx")
    const listed = (await tools.listTools()).tools.map((tool) => tool.name)
    const sampling = listed.find((name) => name.includes("sampling"))
    expect(sampling).toBeDefined()
    const result = await tools.callTool({ name: sampling ?? "", arguments: { prompt: "hello", maxTokens: 10 } })
    expect(JSON.stringify(result)).toContain("sampled by the pool's handler")
    expect(prompts.join(" ")).toContain("hello")
    const elicitation = listed.find((name) => name.includes("elicitation"))
    if (elicitation !== undefined) {
      const elicited = await tools.callTool({ name: elicitation, arguments: {} })
      expect(JSON.stringify(elicited).toLowerCase()).toContain("decline")
    }
  })
})
