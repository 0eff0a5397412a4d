import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { inspect } from "node:util"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as Connection from "../src/Connection.js"
import { classify } from "../src/internal/classify.js"
import * as ServerConfig from "../src/ServerConfig.js"
import { captureLogs, realWait } from "./support.js"

// Real secrets of the shapes users have: a URL with credentials and a query token, header
// values, an env API key. None may show anywhere.
const user = "alice-ops"
const password = "s3cret-pass-9f2"
const queryToken = "q-t0ken-41ab7"
const bearer = "sk-test-bearer-5d1e83"
const headerKey = "sk-test-header-8c2f07"
const envKey = "sk-test-env-77a3c1"
const basic = Buffer.from(`${user}:${password}`).toString("base64")
const secrets = [password, queryToken, bearer, headerKey, envKey, basic, encodeURIComponent(password)]

/** Every rendering of an error a person or a log could see. */
const renderings = (error: unknown): ReadonlyArray<string> => [
  error instanceof Error ? error.message : "",
  String(error),
  inspect(error, { depth: 10 }),
  JSON.stringify(error) ?? ""
]

const leaked = (texts: ReadonlyArray<string>): ReadonlyArray<string> =>
  secrets.flatMap((secret) => texts.filter((text) => text.includes(secret)).map((text) => `${secret} in: ${text}`))

const body = (req: IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    let text = ""
    req.setEncoding("utf8")
    req.on("data", (chunk: string) => (text += chunk))
    req.on("end", () => resolve(text))
    req.on("error", reject)
  })

/**
 * A Streamable HTTP server that completes the MCP handshake, then (once `revoke`d, or from the
 * start) answers every request 401 with a body that quotes the credentials it was sent: the
 * `Authorization` and `X-Api-Key` headers and the URL with its query.
 */
const startQuotingServer = (options: { readonly revokedFromStart: boolean }) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      let revoked = options.revokedFromStart
      const handle = async (req: IncomingMessage, res: ServerResponse) => {
        const text = await body(req)
        if (revoked) {
          const quoted = `authorization=${req.headers.authorization} x-api-key=${req.headers["x-api-key"]} url=${req.url}`
          res.writeHead(401, { "Content-Type": "text/plain" }).end(`invalid API key (${quoted})`)
          return
        }
        if (req.method !== "POST") return void res.writeHead(405).end()
        const message: unknown = JSON.parse(text)
        const id = typeof message === "object" && message !== null && "id" in message ? message.id : undefined
        if (id === undefined) return void res.writeHead(202).end()
        const params = typeof message === "object" && message !== null && "params" in message ? message.params : {}
        const version =
          typeof params === "object" && params !== null && "protocolVersion" in params
            ? params.protocolVersion
            : undefined
        res.writeHead(200, { "Content-Type": "application/json" }).end(
          JSON.stringify({
            jsonrpc: "2.0",
            id,
            result: { protocolVersion: version, capabilities: {}, serverInfo: { name: "quoting", version: "1.0.0" } }
          })
        )
      }
      const server = createServer((req, res) => {
        handle(req, res).catch((error: unknown) => res.writeHead(500).end(String(error)))
      })
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
      const port = (server.address() as AddressInfo).port
      return {
        server,
        port,
        revoke: () => {
          revoked = true
        }
      }
    }),
    ({ server }) =>
      Effect.promise(
        () =>
          new Promise<void>((resolve) => {
            server.closeAllConnections()
            server.close(() => resolve())
          })
      )
  )

const parseServer = (entry: Record<string, unknown>): ServerConfig.ServerConfig => {
  const parsed = ServerConfig.fromEntries({ target: entry }, { source: "test", env: {} })
  const server = Result.isSuccess(parsed) ? parsed.success[0] : undefined
  if (server === undefined) throw new Error("the test's server entry does not parse")
  return server
}

const remoteEntries = (port: number) => ({
  "URL credentials (an Authorization: Basic header) and a query token": {
    type: "http",
    url: `http://${user}:${password}@127.0.0.1:${port}/mcp?token=${queryToken}`
  },
  "an Authorization: Bearer header and an API key header": {
    type: "http",
    url: `http://127.0.0.1:${port}/mcp`,
    headers: { Authorization: `Bearer ${bearer}`, "X-Api-Key": headerKey }
  }
})

const connectionOptions = (server: ServerConfig.ServerConfig): Connection.MakeOptions => ({
  server,
  connectionTimeoutMs: 10_000,
  shutdownGracePeriodMs: 500
})

describe("no secret in any error, cause or log line", () => {
  it.live("a server that refuses the connection and quotes the credentials: the connection error", () =>
    Effect.gen(function* () {
      const { port } = yield* startQuotingServer({ revokedFromStart: true })
      for (const [label, entry] of Object.entries(remoteEntries(port))) {
        const error = yield* Effect.flip(Connection.make(connectionOptions(parseServer(entry))).pipe(Effect.scoped))
        expect(error._tag, label).toBe("MCPConnectionError")
        // The server's words are there, with the credentials taken out.
        expect(error.message, label).toContain("invalid API key (authorization=[REDACTED]")
        expect(leaked(renderings(error)), label).toEqual([])
      }
    }).pipe(Effect.scoped)
  )

  it.live("a connection whose key is revoked: the request's error and the transport's log line", () =>
    Effect.forEach(
      Object.keys(remoteEntries(0)),
      (label) =>
        Effect.gen(function* () {
          const quoting = yield* startQuotingServer({ revokedFromStart: false })
          const server = parseServer(remoteEntries(quoting.port)[label as keyof ReturnType<typeof remoteEntries>])
          const logs = captureLogs("Debug")
          yield* logs.capture(
            Effect.gen(function* () {
              const connection = yield* Connection.make(connectionOptions(server))
              quoting.revoke()
              const raw = yield* Effect.flip(
                Effect.tryPromise({ try: () => connection.client.ping(), catch: (cause) => cause })
              )
              const classified = classify(raw, {
                serverName: server.name,
                method: "ping",
                transport: server.transport,
                scrub: ServerConfig.scrubber(server)
              })
              expect(classified._tag, label).toBe("Connection")
              expect(classified.error.message, label).toContain("invalid API key (authorization=[REDACTED]")
              expect(leaked(renderings(classified.error)), label).toEqual([])
              yield* realWait(() => logs.lines.some((line) => line.includes("transport error")), 5_000)
            }).pipe(Effect.scoped)
          )
          const transportLines = logs.lines.filter((line) => line.includes("transport error"))
          expect(transportLines.join("\n"), label).toContain("invalid API key (authorization=[REDACTED]")
          expect(leaked(logs.lines), label).toEqual([])
        }).pipe(Effect.scoped),
      { discard: true }
    )
  )

  it.live(
    "a stdio server that prints its env key and quotes it in an error: the request error and the stderr log line",
    () =>
      Effect.gen(function* () {
        const logs = captureLogs("Debug")
        // A minimal MCP server over stdio: it completes the handshake, then answers every
        // request with a JSON-RPC error whose message and data quote its API key.
        const script = [
          "const key = process.env.API_KEY",
          "console.error('starting with API_KEY=' + key)",
          "require('node:readline').createInterface({ input: process.stdin }).on('line', (line) => {",
          "  const m = JSON.parse(line)",
          "  if (m.id === undefined) return",
          "  const reply = m.method === 'initialize'",
          "    ? { result: { protocolVersion: m.params.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: 'leaky', version: '1.0.0' } } }",
          "    : { error: { code: -32001, message: 'invalid API key ' + key, data: { sent: [{ authorization: 'Bearer ' + key }] } } }",
          "  process.stdout.write(JSON.stringify({ jsonrpc: '2.0', id: m.id, ...reply }) + '\\n')",
          "})"
        ].join("\n")
        const server = parseServer({ command: process.execPath, args: ["-e", script], env: { API_KEY: envKey } })
        const error = yield* logs.capture(
          Effect.gen(function* () {
            const connection = yield* Connection.make(connectionOptions(server))
            const raw = yield* Effect.flip(
              Effect.tryPromise({
                try: () => connection.client.callTool({ name: "anything" }),
                catch: (cause) => cause
              })
            )
            return classify(raw, {
              serverName: server.name,
              method: "tools/call",
              transport: server.transport,
              scrub: ServerConfig.scrubber(server)
            }).error
          }).pipe(Effect.scoped)
        )
        expect(error._tag).toBe("MCPRequestError")
        expect(error.message).toContain("invalid API key [REDACTED]")
        expect(error._tag === "MCPRequestError" && error.data).toEqual({
          sent: [{ authorization: "Bearer [REDACTED]" }]
        })
        yield* realWait(() => logs.lines.some((line) => line.includes("starting with")), 5_000)
        expect(logs.lines.join("\n")).toContain("starting with API_KEY=[REDACTED]")
        expect(leaked([...renderings(error), ...logs.lines])).toEqual([])
      })
  )

  it("a config error: neither its value nor its message quotes env values, headers or URL credentials", () => {
    const result = ServerConfig.parse(
      {
        mcpServers: {
          typo: { comand: "server", args: ["--api-key", headerKey], env: { API_KEY: envKey } },
          remote: {
            type: "http",
            url: `http://${user}:${password}@127.0.0.1:1/mcp?token=${queryToken}`,
            headers: { Authorization: `Bearer ${bearer}` },
            pool: { maxConnections: "many" }
          }
        }
      },
      { source: "mcp.json", env: {} }
    )
    const error = Result.isFailure(result) ? result.failure : undefined
    expect(error?.message).toBe(
      `Invalid MCP pool configuration in mcp.json at mcpServers.typo (server "typo"): got {"comand":"server","args":["--api-key","[REDACTED]"],"env":{"API_KEY":"[REDACTED]"}}: needs a "command" (stdio) or a "url" (http, sse)`
    )
    expect(leaked([...renderings(error), inspect(error?.value, { depth: 10 })])).toEqual([])
    const whole = ServerConfig.fromEntries(
      { remote: { type: "sse", url: `ftp://${user}:${password}@h/x?token=${queryToken}`, headers: { A: bearer } } },
      { source: "options.servers", env: {} }
    )
    const urlError = Result.isFailure(whole) ? whole.failure : undefined
    expect(urlError?.rule).toBe("must be an http:// or https:// URL")
    expect(leaked(renderings(urlError))).toEqual([])
  })
})
