/**
 * What the `mcp-pool-fixture-server` bin runs: the fixture MCP server over stdio (the default) or over
 * HTTP (Streamable HTTP at `/mcp` plus legacy SSE at `/sse`), printing one JSON line once listening.
 */
import { closeSync, existsSync } from "node:fs"
import { flushCompileCache } from "node:module"
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js"
import { createFixtureServer } from "./server.js"

const usage = `usage: mcp-pool-fixture-server [--transport stdio|http] [--port N] [--host HOST] [--name NAME] [--exit-with-stdin]
                              [--no-ping] [--refuse-if-exists PATH] [--exit-after-handshake MS] [--page-size N]
                              [--serial]
  --transport               stdio (default) or http
  --port                    HTTP port, 0 (default) picks a free one
  --host                    HTTP interface, default 127.0.0.1
  --name                    server name reported to clients
  --exit-with-stdin         (http) exit when stdin ends, so the server dies with the process that spawned it
  --no-ping                 (stdio) answer ping with -32601 Method not found, as some servers do
  --refuse-if-exists PATH   exit with code 3 at once, before any handshake, while PATH exists
  --exit-after-handshake MS (stdio) exit with code 4 MS milliseconds after the handshake (a crash loop)
  --page-size N             answer tools/list, prompts/list, resources/list and resources/templates/list N at a time
  --serial                  handle one request at a time, in arrival order (http: across all sessions), as
                            single-threaded servers do; notifications are not queued`

interface Cli {
  readonly transport: "stdio" | "http"
  readonly port: number
  readonly host: string
  readonly name: string | undefined
  readonly exitWithStdin: boolean
  readonly noPing: boolean
  readonly refuseIfExists: string | undefined
  readonly exitAfterHandshakeMs: number | undefined
  readonly pageSize: number | undefined
  readonly serial: boolean
}

const fail = (message: string): never => {
  process.stderr.write(`${message}\n${usage}\n`)
  process.exit(2)
}

const parseArgs = (argv: ReadonlyArray<string>): Cli => {
  let transport: Cli["transport"] = "stdio"
  let port = 0
  let host = "127.0.0.1"
  let name: string | undefined
  let exitWithStdin = false
  let noPing = false
  let refuseIfExists: string | undefined
  let exitAfterHandshakeMs: number | undefined
  let pageSize: number | undefined
  let serial = false
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? ""
    const eq = arg.indexOf("=")
    const flag = eq === -1 ? arg : arg.slice(0, eq)
    const value = (): string => {
      if (eq !== -1) return arg.slice(eq + 1)
      const next = argv[++i]
      return next ?? fail(`missing value for ${flag}`)
    }
    switch (flag) {
      case "--transport": {
        const v = value()
        transport = v === "stdio" || v === "http" ? v : fail(`unknown transport: ${v}`)
        break
      }
      case "--port": {
        const v = value()
        port = /^\d+$/.test(v) && Number(v) <= 65535 ? Number(v) : fail(`bad port: ${v}`)
        break
      }
      case "--host":
        host = value()
        break
      case "--name":
        name = value()
        break
      case "--exit-with-stdin":
        exitWithStdin = true
        break
      case "--no-ping":
        noPing = true
        break
      case "--refuse-if-exists":
        refuseIfExists = value()
        break
      case "--exit-after-handshake": {
        const v = value()
        exitAfterHandshakeMs = /^\d+$/.test(v) ? Number(v) : fail(`bad milliseconds: ${v}`)
        break
      }
      case "--page-size": {
        const v = value()
        pageSize = /^[1-9]\d{0,5}$/.test(v) ? Number(v) : fail(`bad page size: ${v}`)
        break
      }
      case "--serial":
        serial = true
        break
      case "--help":
      case "-h":
        process.stdout.write(`${usage}\n`)
        process.exit(0)
        break
      default:
        fail(`unknown argument: ${arg}`)
    }
  }
  return {
    transport,
    port,
    host,
    name,
    exitWithStdin,
    noPing,
    refuseIfExists,
    exitAfterHandshakeMs,
    pageSize,
    serial
  }
}

/** Calls `callback` once stdin ends; `drain` reads (and drops) stdin when nothing else reads it. */
const onStdinEnd = (callback: () => void, drain: boolean): void => {
  process.stdin.on("end", callback)
  process.stdin.on("close", callback)
  process.stdin.on("error", callback)
  if (drain) process.stdin.resume()
}

/** An exit that closes the server first (once, however many signals ask) and exits 0 either way. */
const exitOnce = (close: () => Promise<void>) => {
  let exiting = false
  return (): void => {
    if (exiting) return
    exiting = true
    close().then(
      () => process.exit(0),
      () => process.exit(0)
    )
  }
}

const runStdio = async (cli: Cli): Promise<void> => {
  const server = createFixtureServer({
    ...(cli.name === undefined ? {} : { name: cli.name }),
    ...(cli.pageSize === undefined ? {} : { pageSize: cli.pageSize }),
    serial: cli.serial,
    // Output gone, process alive: stdin stays open, so the server lives on until it is ended.
    onCloseStdout: () => closeSync(1)
  })
  // The SDK answers ping itself; without its handler, the protocol answers -32601.
  if (cli.noPing) server.server.removeRequestHandler("ping")
  const exitAfter = cli.exitAfterHandshakeMs
  if (exitAfter !== undefined) {
    server.server.oninitialized = () => {
      setTimeout(() => process.exit(4), exitAfter)
    }
  }
  const transport = new StdioServerTransport()
  const exit = exitOnce(() => server.close())
  // The client is gone once stdout breaks; nothing more can be said.
  process.stdout.on("error", exit)
  process.on("SIGTERM", exit)
  process.on("SIGINT", exit)
  await server.connect(transport)
  onStdinEnd(exit, false)
  // Servers are often ended by SIGKILL: write the compile cache now, not only at exit (and
  // before saying so, since whoever waits for the line may kill us next).
  flushCompileCache()
  process.stderr.write("fixture server ready (stdio)\n")
}

const runHttp = async (cli: Cli): Promise<void> => {
  // Only the HTTP server needs the SDK's HTTP transports (a quarter of the stdio server's start-up).
  const { startHttpFixtureServer } = await import("./http.js")
  const server = await startHttpFixtureServer({
    port: cli.port,
    host: cli.host,
    onCrash: (code) => process.exit(code),
    ...(cli.pageSize === undefined ? {} : { pageSize: cli.pageSize }),
    serial: cli.serial
  })
  const exit = exitOnce(() => server.close())
  process.on("SIGTERM", exit)
  process.on("SIGINT", exit)
  if (cli.exitWithStdin) onStdinEnd(exit, true)
  flushCompileCache()
  process.stderr.write(`fixture server ready (http) ${server.url}\n`)
  process.stdout.write(
    `${JSON.stringify({ url: server.url, sseUrl: server.sseUrl, port: server.port, pid: process.pid })}\n`
  )
}

const cli = parseArgs(process.argv.slice(2))
if (cli.refuseIfExists !== undefined && existsSync(cli.refuseIfExists)) {
  process.stderr.write(`fixture server refuses to start while ${cli.refuseIfExists} exists\n`)
  process.exit(3)
}
const run = cli.transport === "stdio" ? runStdio : runHttp
run(cli).catch((error: unknown) => {
  process.stderr.write(`fixture server failed to start: ${error instanceof Error ? error.message : String(error)}\n`)
  process.exit(1)
})
