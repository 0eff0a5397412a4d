/**
 * What the tests of the server-to-client paths share: SDK clients connected to the fixture over stdio,
 * Streamable HTTP and legacy SSE (closed after each test), and readers of the fixture's tool results.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import type { FetchLike, Transport } from "@modelcontextprotocol/sdk/shared/transport.js"
import type { ClientCapabilities } from "@modelcontextprotocol/sdk/types.js"
import { afterAll, afterEach, beforeAll } from "vitest"
import { fixtureStdioConfig, startHttpFixtureServer } from "../src/index.js"
import type { HttpFixtureServer } from "../src/index.js"

/** The transports every test runs over. */
export const transportNames = ["stdio", "streamable http", "sse"] as const
/** One of {@link transportNames}. */
export type TransportName = (typeof transportNames)[number]

/** A client that declares every capability a server may ask for. */
export const allCapabilities: ClientCapabilities = {
  elicitation: { form: {}, url: {} },
  sampling: {},
  roots: { listChanged: true }
}

/** The first text block of a tool result. */
export const textOf = (result: unknown): string => {
  const content: unknown = typeof result === "object" && result !== null && "content" in result ? result.content : []
  const first: unknown = Array.isArray(content) ? content[0] : undefined
  if (typeof first === "object" && first !== null && "text" in first && typeof first.text === "string") {
    return first.text
  }
  throw new Error(`no text content in ${JSON.stringify(result)}`)
}

/** The first text block of a tool result, parsed as JSON. */
export const jsonOf = (result: unknown): unknown => JSON.parse(textOf(result))

/** A promise (`done`) that resolves once `open` is called. */
export const latch = (): { readonly done: Promise<void>; readonly open: () => void } => {
  let resolve: (() => void) | undefined
  const done = new Promise<void>((resolveDone) => {
    resolve = resolveDone
  })
  return { done, open: () => resolve?.() }
}

interface Connecting {
  readonly transport: Transport
  /** Resolves once the server can send the client messages unrelated to a request. */
  readonly listening: Promise<void>
}

/**
 * A Streamable HTTP transport that says when its standalone GET stream is open: until then, the server
 * drops what it sends unrelated to a request (list changes, log messages, resource updates).
 */
const streamableHttp = (url: string): Connecting => {
  const opened = latch()
  const watchGet: FetchLike = async (input, init) => {
    const response = await fetch(input, init)
    if (init?.method === "GET" && response.ok) opened.open()
    return response
  }
  return { transport: new StreamableHTTPClientTransport(new URL(url), { fetch: watchGet }), listening: opened.done }
}

/** Options of the fixture server the clients of {@link useFixture} connect to. */
export interface FixtureSetup {
  /** `--page-size` / `pageSize`. */
  readonly pageSize?: number
  /** `--serial` / `serial`. */
  readonly serial?: boolean
}

/** Connects clients to a fixture server over `transportName`; everything is closed after each test. */
export const useFixture = (transportName: TransportName, setup: FixtureSetup = {}) => {
  let http: HttpFixtureServer | undefined
  const clients: Array<Client> = []
  beforeAll(async () => {
    if (transportName !== "stdio") http = await startHttpFixtureServer(setup)
  })
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()))
  })
  afterAll(async () => {
    await http?.close()
  })

  const open = (): Connecting => {
    if (transportName === "stdio") {
      const args = [
        ...(setup.pageSize === undefined ? [] : ["--page-size", String(setup.pageSize)]),
        ...(setup.serial === true ? ["--serial"] : [])
      ]
      const transport = new StdioClientTransport({ ...fixtureStdioConfig(args), stderr: "pipe" })
      return { transport, listening: Promise.resolve() }
    }
    if (http === undefined) throw new Error("HTTP fixture server not started")
    if (transportName === "sse") {
      return { transport: new SSEClientTransport(new URL(http.sseUrl)), listening: Promise.resolve() }
    }
    return streamableHttp(http.url)
  }

  /** A connected client that declares `capabilities`, once the server can notify it. */
  const connect = async (capabilities: ClientCapabilities = {}): Promise<Client> => {
    const client = new Client({ name: "fixture-test", version: "1.0.0" }, { capabilities })
    clients.push(client)
    const { transport, listening } = open()
    await client.connect(transport)
    await listening
    return client
  }

  return { connect }
}
