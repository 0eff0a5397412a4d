/**
 * What the rows measure: pooled managers over the stdio fixture server, raw SDK clients on the
 * same server, a one-off direct call, a generic-pool pool of raw clients, and the GC handle.
 */
import { createMcpConnectionManager, MCPConnectionManager, type MCPConnectionManagerPromise } from "@mcp-pool/core"
import type { MCPConnectionPool } from "@mcp-pool/core"
import type { PoolConfigInput } from "@mcp-pool/core/PoolConfig"
import { fixtureStdioConfig } from "@mcp-pool/test-servers"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import * as Effect from "effect/Effect"
import { createPool, type Pool } from "generic-pool"
import { spawnSync } from "node:child_process"
import { availableParallelism } from "node:os"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"

/** The name of the fixture server in every manager the bench makes. */
export const SERVER = "fx"

/** A `.mcp.json`-style launch entry: command and arguments. */
export interface Launch {
  readonly command: string
  readonly args: ReadonlyArray<string>
}

const clientInfo = { name: "mcp-pool-bench", version: "0.0.0" }

/** The arguments of an `echo` call. */
export const echoParams = { name: "echo", arguments: { text: "hi" } }

/** A manager with one pool, `fx`, on the stdio fixture server, warm when it resolves. */
export const fixtureManager = (
  defaults: PoolConfigInput,
  launch: Launch = fixtureStdioConfig()
): Promise<MCPConnectionManagerPromise> =>
  createMcpConnectionManager({ servers: { [SERVER]: { command: launch.command, args: [...launch.args] } }, defaults })

/** The Effect-side pool behind a Promise manager, for `snapshot()` and `counters`. */
export const poolOf = (
  manager: MCPConnectionManagerPromise,
  name: string = SERVER
): Promise<MCPConnectionPool.MCPConnectionPool> =>
  manager.runtime.runPromise(
    Effect.gen(function* () {
      const service = yield* MCPConnectionManager.MCPConnectionManager
      return yield* service.pool(name)
    })
  )

/**
 * `launch` pinned to the machine's last CPU with `taskset` (util-linux), when there is more
 * than one CPU and `taskset` can run; otherwise `launch` as it is. Two servers compared with
 * each other then run on the same core: where the scheduler happens to place a server moves
 * the latency of sequential calls by 2x on a 2-core machine, which would swamp the difference
 * being measured.
 */
export const pinnedLaunch = (launch: Launch = fixtureStdioConfig()): Launch => {
  const cpus = availableParallelism()
  if (cpus < 2 || spawnSync("taskset", ["--version"], { stdio: "ignore" }).status !== 0) return launch
  return { command: "taskset", args: ["--cpu-list", String(cpus - 1), launch.command, ...launch.args] }
}

/** A raw SDK client on its own stdio server process, connected. */
export const connectRaw = async (launch: Launch = fixtureStdioConfig()): Promise<Client> => {
  const client = new Client(clientInfo)
  const transport = new StdioClientTransport({ command: launch.command, args: [...launch.args], stderr: "ignore" })
  await client.connect(transport)
  return client
}

/** `count` raw SDK clients connected in parallel; if one fails, the others are closed and it throws. */
export const connectMany = async (count: number, launch: Launch = fixtureStdioConfig()): Promise<Array<Client>> => {
  const settled = await Promise.allSettled(Array.from({ length: count }, () => connectRaw(launch)))
  const clients = settled.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []))
  const failed = settled.find((s) => s.status === "rejected")
  if (failed === undefined) return clients
  await Promise.allSettled(clients.map((client) => client.close()))
  throw failed.reason
}

/** What an application without a pool does per call: spawn and connect, call `echo`, close. */
export const directEcho = async (launch: Launch = fixtureStdioConfig()): Promise<void> => {
  const client = await connectRaw(launch)
  try {
    await client.callTool(echoParams)
  } finally {
    await client.close()
  }
}

/** A generic-pool pool of `size` raw SDK clients (each lent to one borrower at a time), warm when it resolves. */
export const genericPool = async (size: number, launch: Launch = fixtureStdioConfig()): Promise<Pool<Client>> => {
  const pool = createPool<Client>(
    { create: () => connectRaw(launch), destroy: (client) => client.close() },
    { min: size, max: size }
  )
  await pool.ready()
  return pool
}

/** Drains and clears a generic-pool pool, closing every client. */
export const closeGenericPool = async (pool: Pool<Client>): Promise<void> => {
  await pool.drain()
  await pool.clear()
}

/** The garbage collector: `global.gc` under `--expose-gc`, otherwise obtained through a V8 flag. */
export const garbageCollector = (): (() => void) => {
  const exposed: unknown = Reflect.get(globalThis, "gc")
  if (typeof exposed === "function") return () => void exposed()
  setFlagsFromString("--expose-gc")
  const gc: unknown = runInNewContext("gc")
  if (typeof gc !== "function") throw new Error("no garbage collector handle: run node with --expose-gc")
  return () => void gc()
}
