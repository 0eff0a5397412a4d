/**
 * A tool call without a pool, as an application without one makes it: a new SDK `Client` and
 * transport for the call (a new server process over stdio, a new session over HTTP), then closed.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { readFileSync } from "node:fs"

/** A server of a `.mcp.json` file: a command to run (stdio) or a URL (Streamable HTTP). */
export type ServerEntry =
  | { readonly kind: "stdio"; readonly command: string; readonly args: ReadonlyArray<string> }
  | { readonly kind: "http"; readonly url: string }

const record = (value: unknown): Record<string, unknown> =>
  typeof value === "object" && value !== null ? { ...value } : {}

/** `${VAR}` replaced by the environment's value. */
const expand = (text: string): string => text.replace(/\$\{(\w+)\}/g, (_, name: string) => process.env[name] ?? "")

/**
 * The servers of a `.mcp.json` file, read the simple way (the example's own file only has
 * `command` + `args` and `type: "http"` + `url` entries); the pool reads the same file itself.
 */
export const readServers = (configPath: string): Record<string, ServerEntry> => {
  const servers = record(record(JSON.parse(readFileSync(configPath, "utf8")))["mcpServers"])
  return Object.fromEntries(
    Object.entries(servers).map(([name, value]): [string, ServerEntry] => {
      const entry = record(value)
      const { command, args, url } = entry
      if (typeof url === "string") return [name, { kind: "http", url: expand(url) }]
      if (typeof command !== "string") throw new Error(`${name}: neither a command nor a url`)
      const strings = Array.isArray(args) ? args.filter((arg): arg is string => typeof arg === "string") : []
      return [name, { kind: "stdio", command: expand(command), args: strings.map(expand) }]
    })
  )
}

/** One call made on a new connection. */
export interface NewConnectionCall {
  /** Milliseconds from the start until the answer: the connection's set-up counts, its teardown does not. */
  readonly ms: number
  /** Settles once the connection is closed: its server process ended, or its HTTP session deleted. */
  readonly closed: Promise<void>
}

/**
 * Connects a new client to `entry`, makes one tool call and starts closing the client (which
 * ends the server process, or the HTTP session with a DELETE). When the call fails, the client
 * is closed before the failure is thrown.
 */
export const callOnNewConnection = async (
  entry: ServerEntry,
  params: { readonly name: string; readonly arguments: Record<string, unknown> }
): Promise<NewConnectionCall> => {
  const started = performance.now()
  const client = new Client({ name: "mcp-pool-quickstart", version: "0.0.0" })
  const transport =
    entry.kind === "http"
      ? new StreamableHTTPClientTransport(new URL(entry.url))
      : new StdioClientTransport({ command: entry.command, args: [...entry.args], stderr: "ignore" })
  const close = async () => {
    try {
      if (transport instanceof StreamableHTTPClientTransport && transport.sessionId !== undefined) {
        await transport.terminateSession()
      }
    } finally {
      await client.close()
    }
  }
  let ms: number
  try {
    await client.connect(transport)
    await client.callTool(params)
    ms = performance.now() - started
  } catch (error) {
    await close().catch((closeError: unknown) => console.error("could not close a connection:", closeError))
    throw error
  }
  const closed = close()
  // Marked as handled now; whoever awaits `closed` still sees its failure.
  closed.catch(() => undefined)
  return { ms, closed }
}
