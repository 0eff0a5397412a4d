/**
 * Shared parts of the stdio transport's integration tests: fixture scripts written to a temp
 * directory, and bookkeeping that ends every transport and process a test started, even when it fails.
 */
import { readFileSync } from "node:fs"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import type { RequestOptions } from "@modelcontextprotocol/sdk/shared/protocol.js"
import { descendantsOf, processGroupAlive } from "@mcp-pool/test-servers"
import { type ProcessRef, readStat, signalProcess } from "../src/internal/processTree.js"
import { ProcessGroupStdioTransport, type ProcessGroupStdioTransportOptions } from "../src/internal/stdioTransport.js"

/**
 * A raw JSON-RPC MCP server, no SDK: it answers `initialize`, `ping` and a few tools that break
 * it on purpose. `FAULT=close-stdout-at-initialize` closes its stdout instead of answering the
 * handshake; `IGNORE_TERM=1` makes it deaf to SIGTERM; `ESCAPE` makes it start, at once,
 * processes that leave its process group (see {@link keeperScript}). It never exits by itself.
 */
const faultyServerScript = `
import { spawn } from "node:child_process"
import { closeSync, writeSync } from "node:fs"
import { createInterface } from "node:readline"

if (process.env.IGNORE_TERM === "1") process.on("SIGTERM", () => process.stderr.write("ignoring SIGTERM\\n"))
setInterval(() => {}, 60_000)

const keeper = [process.env.KEEPER]
const escape = process.env.ESCAPE ?? ""
if (escape === "detached") spawn(process.execPath, keeper, { detached: true, stdio: ["ignore", "ignore", "inherit"] })
if (escape === "detached-chain") {
  spawn(process.execPath, keeper, { detached: true, stdio: "ignore", env: { ...process.env, KEEPER_CHILD: "detached" } })
}
if (escape === "setsid") {
  spawn("sh", ["-c", 'setsid "$NODE" "$KEEPER" & wait'], { stdio: "ignore", env: { ...process.env, NODE: process.execPath } })
}

const lines = createInterface({ input: process.stdin })
const write = (message) => writeSync(1, JSON.stringify({ jsonrpc: "2.0", ...message }) + "\\n")
const done = { content: [] }
const tools = {
  "close-stdout": () => closeSync(1),
  "close-stdin": () => {
    lines.close()
    process.stdin.destroy()
    closeSync(0)
    return done
  },
  exit: (args) => process.exit(args.code),
  stderr: (args) => {
    for (const line of args.lines) process.stderr.write(line + "\\n")
    return done
  }
}
lines.on("line", (line) => {
  const { id, method, params } = JSON.parse(line)
  if (method === "initialize") {
    if (process.env.FAULT === "close-stdout-at-initialize") return closeSync(1)
    const serverInfo = { name: "faulty", version: "1.0.0" }
    write({ id, result: { protocolVersion: params.protocolVersion, capabilities: { tools: {} }, serverInfo } })
  } else if (method === "ping") write({ id, result: {} })
  else if (method === "tools/call") {
    const result = tools[params.name](params.arguments ?? {})
    if (result !== undefined) write({ id, result })
  }
})
`

/**
 * A process that runs until killed and appends its pid to \`PID_FILE\`; \`KEEPER_IGNORE_TERM=1\`
 * makes it deaf to SIGTERM, \`KEEPER_CHILD=detached\` makes it start one more keeper, detached.
 */
const keeperScript = `
import { spawn } from "node:child_process"
import { appendFileSync } from "node:fs"
if (process.env.KEEPER_IGNORE_TERM === "1") process.on("SIGTERM", () => {})
if (process.env.KEEPER_CHILD === "detached") {
  spawn(process.execPath, [process.argv[1]], { detached: true, stdio: "ignore", env: { ...process.env, KEEPER_CHILD: "" } })
}
appendFileSync(process.env.PID_FILE, process.pid + "\\n")
setInterval(() => {}, 60_000)
`

const transportSource = fileURLToPath(new URL("../src/internal/stdioTransport.ts", import.meta.url))

/**
 * The opening of a host script that runs the transport from its TypeScript source: Node strips
 * the types, and a resolve hook maps the sources' `./x.js` imports to `./x.ts`. Binds
 * `ProcessGroupStdioTransport`.
 */
export const hostPreamble = `
import { registerHooks } from "node:module"
registerHooks({
  resolve(specifier, context, nextResolve) {
    try {
      return nextResolve(specifier, context)
    } catch (error) {
      if (error?.code !== "ERR_MODULE_NOT_FOUND" || !specifier.startsWith(".") || !specifier.endsWith(".js")) throw error
      return nextResolve(specifier.slice(0, -3) + ".ts", context)
    }
  }
})
const { ProcessGroupStdioTransport } = await import(${JSON.stringify(pathToFileURL(transportSource).href)})
`

/** Paths of the fixture scripts. */
export interface Fixtures {
  readonly dir: string
  readonly faultyServer: string
  readonly keeper: string
}

/** Writes the fixture scripts to a new temp directory. */
export const writeFixtures = async (): Promise<Fixtures> => {
  const dir = await mkdtemp(join(tmpdir(), "mcp-pool-stdio-"))
  const fixtures = { dir, faultyServer: join(dir, "faulty.mjs"), keeper: join(dir, "keeper.mjs") }
  await writeFile(fixtures.faultyServer, faultyServerScript)
  await writeFile(fixtures.keeper, keeperScript)
  return fixtures
}

/** Removes the fixture directory. */
export const removeFixtures = (fixtures: Fixtures | undefined): Promise<void> =>
  fixtures === undefined ? Promise.resolve() : rm(fixtures.dir, { recursive: true, force: true })

/** The pids a keeper file lists, in the order the keepers started. */
export const pidsIn = (file: string): ReadonlyArray<number> => {
  let text: string
  try {
    text = readFileSync(file, "utf8")
  } catch (error) {
    if (error instanceof Error && "code" in error && error.code === "ENOENT") return []
    throw error
  }
  return text
    .split("\n")
    .filter((line) => line.length > 0)
    .map(Number)
}

/** Of `pids`, those that still run (not zombies), from the whole process table. */
export const stillRunning = async (pids: ReadonlyArray<number>): Promise<ReadonlyArray<number>> => {
  const live = new Set((await descendantsOf(1)).map((info) => info.pid))
  return pids.filter((pid) => live.has(pid))
}

/** The pid of a started transport. */
export const pidOf = (transport: ProcessGroupStdioTransport): number => {
  const pid = transport.pid
  if (pid === undefined) throw new Error("the transport has no pid")
  return pid
}

/** Everything tests open, and the cleanup that ends it after each test. */
export interface Tracker {
  /** A transport that is closed after the test (its group killed if that fails). */
  readonly transport: (options: ProcessGroupStdioTransportOptions) => ProcessGroupStdioTransport
  /** A real SDK client connected over the transport, closed after the test. */
  readonly connect: (transport: ProcessGroupStdioTransport, options?: RequestOptions) => Promise<Client>
  /** A process outside any tracked group (a server's escapee), SIGKILLed after the test if it still runs. */
  readonly process: (pid: number) => void
  /** A process group (by pgid) SIGKILLed after the test if it still lives. */
  readonly group: (pgid: number) => void
  /** Closes what was opened, kills what remains; for `afterEach`. */
  readonly cleanup: () => Promise<void>
}

const killGroup = (pgid: number): void => {
  try {
    process.kill(-pgid, "SIGKILL")
  } catch (error) {
    if (!(error instanceof Error && "code" in error && error.code === "ESRCH")) throw error
  }
}

/** A tracker for one test file. */
export const makeTracker = (): Tracker => {
  const transports: Array<ProcessGroupStdioTransport> = []
  const clients: Array<Client> = []
  const groups: Array<number> = []
  const processes: Array<ProcessRef> = []
  const cleanup = async (): Promise<void> => {
    const opened = transports.splice(0)
    try {
      await Promise.all(clients.splice(0).map((client) => client.close()))
      await Promise.all(opened.map((transport) => transport.close()))
    } finally {
      // A safety net for failed tests: whatever a test started must not outlive it.
      for (const transport of opened) if (transport.pid !== undefined) groups.push(transport.pid)
      for (const pgid of groups.splice(0)) if (processGroupAlive(pgid)) killGroup(pgid)
      for (const ref of processes.splice(0)) signalProcess(ref, "SIGKILL")
    }
  }
  return {
    transport: (options) => {
      const transport = new ProcessGroupStdioTransport(options)
      transports.push(transport)
      return transport
    },
    connect: async (transport, options) => {
      const client = new Client({ name: "stdio-transport-test", version: "0.0.0" }, { capabilities: {} })
      clients.push(client)
      await client.connect(transport, options)
      return client
    },
    process: (pid) => {
      const stat = readStat(pid)
      if (stat !== undefined) processes.push({ pid, startTime: stat.startTime, leadsGroup: false })
    },
    group: (pgid) => groups.push(pgid),
    cleanup
  }
}
