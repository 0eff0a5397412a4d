/**
 * What the `mcp-pool-fixture-server` bin runs: the fixture MCP server over stdio (the default) or over
 * HTTP (Streamable HTTP at `/mcp` plus legacy SSE at `/sse`), printing one JSON line once listening.
 */
import { flushCompileCache } from "node:module"
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js"
import { createFixtureServer } from "./server.js"

const usage = `usage: mcp-pool-fixture-server [--transport stdio|http] [--port N] [--host HOST] [--name NAME] [--exit-with-stdin]
  --transport        stdio (default) or http
  --port             HTTP port, 0 (default) picks a free one
  --host             HTTP interface, default 127.0.0.1
  --name             server name reported to clients
  --exit-with-stdin  (http) exit when stdin ends, so the server dies with the process that spawned it`

interface Cli {
  readonly transport: "stdio" | "http"
  readonly port: number
  readonly host: string
  readonly name: string | undefined
  readonly exitWithStdin: boolean
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
      case "--help":
      case "-h":
        process.stdout.write(`${usage}\n`)
        process.exit(0)
        break
      default:
        fail(`unknown argument: ${arg}`)
    }
  }
  return { transport, port, host, name, exitWithStdin }
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
  const server = createFixtureServer(cli.name === undefined ? {} : { name: cli.name })
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
  const server = await startHttpFixtureServer({ port: cli.port, host: cli.host, onCrash: (code) => process.exit(code) })
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
const run = cli.transport === "stdio" ? runStdio : runHttp
run(cli).catch((error: unknown) => {
  process.stderr.write(`fixture server failed to start: ${error instanceof Error ? error.message : String(error)}\n`)
  process.exit(1)
})
