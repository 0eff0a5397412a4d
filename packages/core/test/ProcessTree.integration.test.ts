/**
 * Integration tests, with real processes (Linux), of ending the processes a stdio server started
 * outside its process group: spawned `detached`, after `setsid`, and on the host's exit.
 */
import { execFile, spawn } from "node:child_process"
import { existsSync } from "node:fs"
import { writeFile } from "node:fs/promises"
import { join } from "node:path"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { descendantsOf, waitFor } from "@mcp-pool/test-servers"
import { readStat, signalProcess } from "../src/internal/processTree.js"
import {
  type Fixtures,
  hostPreamble,
  makeTracker,
  pidOf,
  pidsIn,
  removeFixtures,
  stillRunning,
  writeFixtures
} from "./StdioTestKit.js"

/** A host that starts a server whose detached child records its pid, then exits without closing. */
const hostScript = `
${hostPreamble}
import { readFileSync } from "node:fs"
const { HOST_SERVER, HOST_KEEPER, HOST_PID_FILE } = process.env
const transport = new ProcessGroupStdioTransport({
  command: process.execPath,
  args: [HOST_SERVER],
  env: { ESCAPE: "detached", KEEPER: HOST_KEEPER, PID_FILE: HOST_PID_FILE }
})
await transport.start()
const started = Date.now()
const recorded = () => { try { return readFileSync(HOST_PID_FILE, "utf8").length > 0 } catch { return false } }
while (!recorded()) {
  if (Date.now() - started > 5_000) throw new Error("the detached child never started")
  await new Promise((resolve) => setTimeout(resolve, 10))
}
process.stdout.write(JSON.stringify({ pid: transport.pid }) + "\\n")
process.exit(0)
`

let fixtures: Fixtures | undefined
let hostPath = ""
let files = 0
const track = makeTracker()
const hasSetsid = ["/usr/bin/setsid", "/bin/setsid"].some((path) => existsSync(path))

beforeAll(async () => {
  fixtures = await writeFixtures()
  hostPath = join(fixtures.dir, "host.mjs")
  await writeFile(hostPath, hostScript)
})

afterAll(() => removeFixtures(fixtures))

afterEach(async () => {
  await track.cleanup()
  expect(await descendantsOf(process.pid)).toEqual([])
})

const paths = (): Fixtures & { readonly pidFile: string } => {
  if (fixtures === undefined) throw new Error("fixtures not written")
  return { ...fixtures, pidFile: join(fixtures.dir, `pids-${++files}`) }
}

/** Waits until `count` escaped processes have recorded their pids, and tracks them for cleanup. */
const escapees = async (pidFile: string, count: number): Promise<ReadonlyArray<number>> => {
  await waitFor(() => pidsIn(pidFile).length >= count, 5_000)
  const pids = pidsIn(pidFile)
  for (const pid of pids) track.process(pid)
  return pids
}

/** Starts a server that makes `escape` escapees, connects to it, and waits for them. */
const serverWithEscapees = async (escape: string, count: number, env: Readonly<Record<string, string>> = {}) => {
  const { faultyServer, keeper, pidFile } = paths()
  const transport = track.transport({
    command: process.execPath,
    args: [faultyServer],
    env: { ESCAPE: escape, KEEPER: keeper, PID_FILE: pidFile, ...env },
    killGracePeriodMs: 200
  })
  const client = await track.connect(transport)
  const pids = await escapees(pidFile, count)
  const pgid = pidOf(transport)
  // They did leave the group: signalling the group alone would miss them.
  const table = await descendantsOf(process.pid)
  for (const pid of pids) {
    const info = table.find((row) => row.pid === pid)
    expect(info?.pgid).toBeDefined()
    expect(info?.pgid).not.toBe(pgid)
  }
  return { transport, client, pids }
}

/** Closes a client and returns how long its transport took. */
const timedClose = async (close: () => Promise<void>): Promise<number> => {
  const started = performance.now()
  await close()
  return performance.now() - started
}

describe.runIf(process.platform === "linux")("ending the processes that left a server's group", () => {
  it.each([
    { name: "a detached child", escape: "detached", count: 1 },
    { name: "a detached child and its detached child", escape: "detached-chain", count: 2 },
    ...(hasSetsid ? [{ name: "a grandchild that ran setsid", escape: "setsid", count: 1 }] : [])
  ])("ends $name on close, promptly", async ({ escape, count }) => {
    const { client, pids } = await serverWithEscapees(escape, count)
    expect(await stillRunning(pids)).toEqual(pids)
    const elapsed = await timedClose(() => client.close())
    expect(elapsed).toBeLessThan(1_000)
    expect(await stillRunning(pids)).toEqual([])
  })

  it("SIGKILLs an escaped process deaf to SIGTERM after the grace period", async () => {
    const { client, pids } = await serverWithEscapees("detached", 1, { KEEPER_IGNORE_TERM: "1" })
    const elapsed = await timedClose(() => client.close())
    expect(elapsed).toBeGreaterThanOrEqual(190)
    expect(elapsed).toBeLessThan(1_500)
    expect(await stillRunning(pids)).toEqual([])
  })

  it("ends the escaped processes when the server fails, without a close()", async () => {
    const { transport, client, pids } = await serverWithEscapees("detached-chain", 2)
    await expect(client.callTool({ name: "close-stdout", arguments: {} })).rejects.toThrow(/Connection closed/)
    await waitFor(async () => (await stillRunning(pids)).length === 0, 5_000)
    await transport.close()
  })

  it("SIGKILLs the escaped processes of the groups still open when the host process exits", async () => {
    const { faultyServer, keeper, pidFile } = paths()
    const env = { ...process.env, HOST_SERVER: faultyServer, HOST_KEEPER: keeper, HOST_PID_FILE: pidFile }
    const output = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, [hostPath], { timeout: 10_000, env }, (error, stdout) => {
        if (error === null) resolve(stdout)
        else reject(error)
      })
    })
    const parsed: unknown = JSON.parse(output)
    const pgid = typeof parsed === "object" && parsed !== null && "pid" in parsed ? Number(parsed.pid) : NaN
    expect(Number.isInteger(pgid)).toBe(true)
    track.group(pgid)
    const pids = await escapees(pidFile, 1)
    await waitFor(async () => (await stillRunning([pgid, ...pids])).length === 0, 2_000)
  })

  it("never signals a pid whose start time is not the one collected", async () => {
    const child = spawn(process.execPath, ["-e", "setInterval(() => {}, 60_000)"], { stdio: "ignore" })
    const pid = child.pid
    if (pid === undefined) throw new Error("no pid")
    track.process(pid)
    const stat = readStat(pid)
    if (stat === undefined) throw new Error("the child is not in /proc")
    const exited = new Promise((resolve) => child.once("exit", resolve))

    // The same pid, as if it now named a process started later than the one collected.
    const reused = { pid, startTime: String(Number(stat.startTime) + 1), leadsGroup: false }
    expect(signalProcess(reused, "SIGKILL")).toBe(false)
    expect(await stillRunning([pid])).toEqual([pid])

    expect(signalProcess({ pid, startTime: stat.startTime, leadsGroup: false }, "SIGKILL")).toBe(true)
    await expect(exited).resolves.toBeDefined()
  })
})
