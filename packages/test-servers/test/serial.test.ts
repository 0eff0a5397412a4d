/**
 * Serial mode (`--serial` / `serial`): one request at a time, in arrival order, over stdio, Streamable
 * HTTP and SSE, and across the sessions of an HTTP server (in this process and in a child process);
 * a cancelled request that waits its turn is dropped. Without it, requests overlap.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { EmptyResultSchema } from "@modelcontextprotocol/sdk/types.js"
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js"
import { afterEach, describe, expect, it } from "vitest"
import { spawnHttpFixtureServer, startHttpFixtureServer } from "../src/index.js"
import { jsonOf, latch, textOf, transportNames, useFixture } from "./kit.js"

/** How long each `sleep` call of these tests waits: two of them, one after the other, take twice as long. */
const SLEEP_MS = 400

/**
 * Calls `sleep` for `ms`; `running` resolves once its first progress notification arrives, that is
 * once the server is handling it (not merely holding it in its queue).
 */
const startSleep = (client: Client, ms: number = SLEEP_MS, signal?: AbortSignal) => {
  const started = latch()
  const done = client.callTool({ name: "sleep", arguments: { ms, progressIntervalMs: 20 } }, undefined, {
    onprogress: () => started.open(),
    ...(signal === undefined ? {} : { signal })
  })
  // A sleep that never runs would reject `done`; a test awaits `running` or `done`, not always both.
  done.catch(() => {})
  return { running: started.done, done }
}

type MessageTest = (message: JSONRPCMessage) => boolean

/** A tools/call of the tool `name`. */
const callOf =
  (name: string): MessageTest =>
  (message) =>
    "method" in message && message.method === "tools/call" && message.params?.["name"] === name

/** A message of `method` (a request or a notification). */
const methodOf =
  (method: string): MessageTest =>
  (message) =>
    "method" in message && message.method === method

/** A request's label in {@link Watched.answered}: the tool's name for a tools/call, else the method. */
const labelOf = (message: JSONRPCMessage): string | undefined => {
  if (!("method" in message) || !("id" in message)) return undefined
  const name = message.params?.["name"]
  return message.method === "tools/call" && typeof name === "string" ? name : message.method
}

interface Watched {
  /**
   * Resolves once a message passing `test` was sent: over stdio, once it was written to the server's
   * stdin (which the server reads in order); over Streamable HTTP and SSE, once the server answered
   * its POST, which it does after taking the message in. So a message sent after that arrives after it.
   */
  readonly sent: (test: MessageTest) => Promise<void>
}

/**
 * Watches what `client`'s transport carries: what it sent (see {@link Watched.sent}), and, pushed on
 * `answered` (which clients may share) as they arrive, the labels of the answers to its requests (see
 * {@link labelOf}, after `prefix`), before the client's own handling of them.
 */
const watch = (client: Client, answered: Array<string>, prefix = ""): Watched => {
  const transport = client.transport
  if (transport === undefined) throw new Error("client not connected")
  // By request id.
  const labels = new Map<unknown, string>()
  const sent: Array<JSONRPCMessage> = []
  const waiting = new Set<{ readonly test: MessageTest; readonly open: () => void }>()
  const send = transport.send.bind(transport)
  transport.send = async (message, options) => {
    const label = labelOf(message)
    if (label !== undefined && "id" in message) labels.set(message.id, `${prefix}${label}`)
    await send(message, options)
    sent.push(message)
    for (const waiter of waiting) {
      if (waiter.test(message)) {
        waiting.delete(waiter)
        waiter.open()
      }
    }
  }
  const onmessage = transport.onmessage
  transport.onmessage = (message, extra) => {
    const label = ("result" in message || "error" in message) && "id" in message ? labels.get(message.id) : undefined
    if (label !== undefined) answered.push(label)
    onmessage?.(message, extra)
  }
  return {
    sent: (test) => {
      if (sent.some(test)) return Promise.resolve()
      const { done, open } = latch()
      waiting.add({ test, open })
      return done
    }
  }
}

const echo = (client: Client, value: string): Promise<string> =>
  client.callTool({ name: "echo", arguments: { text: value } }).then(textOf)

/** How long `run` takes, in milliseconds. */
const timed = async (run: () => Promise<unknown>): Promise<number> => {
  const start = performance.now()
  await run()
  return performance.now() - start
}

describe.each(transportNames)("serial mode over %s", (transportName) => {
  const { connect } = useFixture(transportName, { serial: true })

  it("handles two sleeps sent at once one after the other", async () => {
    const client = await connect()
    const elapsed = await timed(() => Promise.all([startSleep(client).done, startSleep(client).done]))
    // Timers may fire a millisecond early.
    expect(elapsed).toBeGreaterThanOrEqual(2 * SLEEP_MS - 10)
  })

  it("answers an echo sent while a sleep runs after the sleep", async () => {
    const client = await connect()
    const answered: Array<string> = []
    watch(client, answered)
    const sleep = startSleep(client)
    await sleep.running
    const echoed = echo(client, "after the sleep")
    expect(textOf(await sleep.done)).toBe(`slept ${SLEEP_MS} ms`)
    expect(await echoed).toBe("after the sleep")
    expect(answered).toEqual(["sleep", "echo"])
  })

  it("queues every request, not only tools/call, and answers them in the order they arrived", async () => {
    const client = await connect()
    const answered: Array<string> = []
    const { sent } = watch(client, answered)
    const sleep = startSleep(client)
    await sleep.running
    // Each is sent once the one before it has reached the server.
    const pinged = client.ping()
    await sent(methodOf("ping"))
    const listed = client.listTools()
    await sent(methodOf("tools/list"))
    const unknown = client.request({ method: "fixture/unknown" }, EmptyResultSchema)
    await sent(methodOf("fixture/unknown"))
    const added = client.callTool({ name: "add", arguments: { a: 1, b: 2 } })
    await sent(callOf("add"))
    const echoed = echo(client, "last")

    await sleep.done
    await pinged
    expect((await listed).tools.map((tool) => tool.name)).toContain("sleep")
    await expect(unknown).rejects.toMatchObject({ code: -32601 })
    expect(textOf(await added)).toBe("3")
    expect(await echoed).toBe("last")
    expect(answered).toEqual(["sleep", "ping", "tools/list", "fixture/unknown", "add", "echo"])

    // requests_seen still counts them all (itself included), and nothing is left in flight.
    const seen = jsonOf(await client.callTool({ name: "requests_seen" }))
    expect(seen).toMatchObject({
      methods: { initialize: 1, ping: 1, "tools/list": 1, "fixture/unknown": 1, "tools/call": 4 },
      inFlight: [],
      cancelled: []
    })
  })

  it("drops a cancelled request while it waits: it never runs and the requests after it go on", async () => {
    const client = await connect()
    const answered: Array<string> = []
    const { sent } = watch(client, answered)
    const sleepController = new AbortController()
    const addController = new AbortController()
    try {
      const sleep = startSleep(client, 30_000, sleepController.signal)
      await sleep.running
      // add_tool would leave a trace (a new tool) if it ran.
      const adding = client.callTool({ name: "add_tool", arguments: { name: "never_added" } }, undefined, {
        signal: addController.signal
      })
      await sent(callOf("add_tool"))
      const echoed = echo(client, "after the cancelled one")
      await sent(callOf("echo"))
      addController.abort("not any more")
      await expect(adding).rejects.toThrow("not any more")
      await sent(methodOf("notifications/cancelled"))
      // Only now does the queue move on: the sleep, the one running, is cancelled too.
      sleepController.abort("enough")
      await expect(sleep.done).rejects.toThrow("enough")

      expect(await echoed).toBe("after the cancelled one")
      expect((await client.listTools()).tools.map((tool) => tool.name)).not.toContain("never_added")
      const seen = jsonOf(await client.callTool({ name: "requests_seen" }))
      expect(seen).toMatchObject({
        inFlight: [],
        cancelled: [{ reason: "not any more" }, { reason: "enough" }]
      })
      // A cancelled request is never answered.
      expect(answered).toEqual(["echo", "tools/list", "requests_seen"])
    } finally {
      // Whatever happened, nothing is left blocking this server's queue for the next test.
      addController.abort()
      sleepController.abort()
    }
  })
})

describe.each(transportNames)("without serial mode over %s", (transportName) => {
  const { connect } = useFixture(transportName)

  it("handles two sleeps sent at once together", async () => {
    const client = await connect()
    const first = startSleep(client)
    const second = startSleep(client)
    // Both run at once: each reports progress before either is done (a bound on the total time
    // failed on a busy machine).
    const both = Promise.all([first.running, second.running]).then(() => "both running")
    const ended = Promise.race([first.done, second.done]).then(() => "one done")
    expect(await Promise.race([both, ended])).toBe("both running")
    await Promise.all([first.done, second.done])
  })

  it("answers an echo sent while a sleep runs before the sleep", async () => {
    const client = await connect()
    const answered: Array<string> = []
    watch(client, answered)
    const sleep = startSleep(client)
    await sleep.running
    expect(await echo(client, "meanwhile")).toBe("meanwhile")
    await sleep.done
    expect(answered).toEqual(["echo", "sleep"])
  })
})

const cleanups: Array<() => Promise<unknown>> = []
afterEach(async () => {
  // Clients first, then servers.
  for (const cleanup of cleanups.splice(0).toReversed()) await cleanup().catch(() => {})
})

/** A client connected over Streamable HTTP to `url`, or over legacy SSE to `sseUrl`; closed after the test. */
const connectHttp = async (server: { readonly url: string; readonly sseUrl: string }, sse = false) => {
  const client = new Client({ name: "fixture-test", version: "1.0.0" })
  cleanups.push(() => client.close())
  await client.connect(
    sse ? new SSEClientTransport(new URL(server.sseUrl)) : new StreamableHTTPClientTransport(new URL(server.url))
  )
  return client
}

const httpServers = {
  "in this process": async (serial: boolean) => {
    const server = await startHttpFixtureServer({ serial })
    cleanups.push(() => server.close())
    return server
  },
  "in a child process": async (serial: boolean) => {
    const server = await spawnHttpFixtureServer({ serial })
    cleanups.push(() => server.stop())
    return server
  }
}

describe.each(Object.entries(httpServers))("an HTTP fixture server %s", (_where, start) => {
  it("in serial mode, handles the requests of all its sessions one at a time", async () => {
    const server = await start(true)
    // Streamable HTTP and SSE sessions alike.
    const a = await connectHttp(server)
    const b = await connectHttp(server, true)
    const c = await connectHttp(server)

    const elapsed = await timed(() => Promise.all([startSleep(a).done, startSleep(b).done]))
    expect(elapsed).toBeGreaterThanOrEqual(2 * SLEEP_MS - 10)

    const answered: Array<string> = []
    watch(a, answered, "a: ")
    const { sent } = watch(b, answered, "b: ")
    watch(c, answered, "c: ")
    const sleep = startSleep(a)
    await sleep.running
    const echoed = echo(b, "b")
    await sent(callOf("echo"))
    await Promise.all([sleep.done, echoed, c.ping()])
    expect(answered).toEqual(["a: sleep", "b: echo", "c: ping"])
  })

  it("without serial mode, handles the requests of its sessions together", async () => {
    const server = await start(false)
    const a = await connectHttp(server)
    const b = await connectHttp(server, true)
    const answered: Array<string> = []
    watch(a, answered, "a: ")
    watch(b, answered, "b: ")
    const sleep = startSleep(a)
    await sleep.running
    expect(await echo(b, "b")).toBe("b")
    await sleep.done
    expect(answered).toEqual(["b: echo", "a: sleep"])
  })
})
