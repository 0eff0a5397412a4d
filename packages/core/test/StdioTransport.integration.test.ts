/**
 * Integration tests of the process-group stdio transport under the real SDK `Client`, with real
 * server processes: direct, behind `sh` and node wrappers, deaf to SIGTERM, killed, missing.
 */
import { ChildProcess, execFile } from "node:child_process"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest"
import { descendantsOf, processGroupAlive, waitFor } from "@mcp-pool/test-servers"
import { classify } from "../src/internal/classify.js"
import { type ProcessGroupStdioTransport, SendFailed } from "../src/internal/stdioTransport.js"
import { hostPreamble, makeTracker, pidOf } from "./StdioTestKit.js"
import { text as textOf } from "./support.js"

const sdkDir = fileURLToPath(new URL("../node_modules/@modelcontextprotocol/sdk/dist/esm/", import.meta.url))
const everythingServer = fileURLToPath(
  new URL("../node_modules/@modelcontextprotocol/server-everything/dist/index.js", import.meta.url)
)
const sdkModule = (path: string): string => JSON.stringify(pathToFileURL(join(sdkDir, path)).href)

/** A small MCP server: `echo` answers, `hang` never does; env switches make it deaf to SIGTERM or keep it alive without stdin. */
const serverScript = `
import { Server } from ${sdkModule("server/index.js")}
import { StdioServerTransport } from ${sdkModule("server/stdio.js")}
import { CallToolRequestSchema, ListToolsRequestSchema } from ${sdkModule("types.js")}

if (process.env.IGNORE_TERM === "1") process.on("SIGTERM", () => process.stderr.write("ignoring SIGTERM\\n"))
if (process.env.IGNORE_TERM === "1" || process.env.KEEP_ALIVE === "1") setInterval(() => {}, 60_000)

const server = new Server({ name: "fixture", version: "1.0.0" }, { capabilities: { tools: {} } })
server.setRequestHandler(ListToolsRequestSchema, async () => ({
  tools: [
    { name: "echo", inputSchema: { type: "object", properties: { text: { type: "string" } } } },
    { name: "hang", inputSchema: { type: "object" } }
  ]
}))
server.setRequestHandler(CallToolRequestSchema, async (request) => {
  if (request.params.name === "hang") {
    process.stderr.write("hang started\\n")
    return new Promise(() => {})
  }
  return { content: [{ type: "text", text: String(request.params.arguments?.text) }] }
})
process.stderr.write("fixture stderr one\\nfixture stderr ")
process.stderr.write("two\\r\\n")
await server.connect(new StdioServerTransport())
`

/** A node wrapper that runs the server (argv[2]) as its child on the same stdio, like npx does. */
const wrapperScript = `
import { spawn } from "node:child_process"
const child = spawn(process.execPath, [process.argv[2]], { stdio: "inherit" })
child.on("exit", (code) => process.exit(code ?? 1))
`

/**
 * A host that starts a transport and ends without closing it. Its server (behind sh) ignores
 * its stdin, so only the transport's exit hook can end it.
 */
const hostScript = (marker: string): string => `
${hostPreamble}
const transport = new ProcessGroupStdioTransport({
  command: "sh",
  args: ["-c", '"$NODE" -e "setInterval(() => {}, 60000)" ${marker}; true'],
  env: { NODE: process.execPath }
})
await transport.start()
process.stdout.write(JSON.stringify({ pid: transport.pid }) + "\\n")
if (process.env.HOST_END === "SIGTERM") process.kill(process.pid, "SIGTERM")
else process.exit(0)
setInterval(() => {}, 1000)
`

let dir = ""
let serverPath = ""
let wrapperPath = ""
let hostPath = ""
const hostMarker = `mcp-pool-host-test-${process.pid}`

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "mcp-pool-stdio-"))
  serverPath = join(dir, "server.mjs")
  wrapperPath = join(dir, "wrapper.mjs")
  hostPath = join(dir, "host.mjs")
  await writeFile(serverPath, serverScript)
  await writeFile(wrapperPath, wrapperScript)
  await writeFile(hostPath, hostScript(hostMarker))
})

afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** Everything a test opened, closed (and, failing that, killed) after it. */
const track = makeTracker()

afterEach(async () => {
  await track.cleanup()
  expect(await descendantsOf(process.pid)).toEqual([])
})

const makeTransport = track.transport
const connect = (transport: ProcessGroupStdioTransport): Promise<Client> => track.connect(transport)

/** Installs a transport's callbacks (the SDK's transport API is callback properties, not events). */
const listen = (
  transport: ProcessGroupStdioTransport,
  callbacks: Pick<ProcessGroupStdioTransport, "onclose" | "onerror" | "onexit">
): void => {
  Object.assign(transport, callbacks)
}

/** A stdin `write` that fails as a broken pipe does: the callback gets EPIPE on a later tick. */
const brokenPipe = (_chunk: unknown, encodingOrCallback?: unknown, callback?: unknown): boolean => {
  const done = typeof encodingOrCallback === "function" ? encodingOrCallback : callback
  const error = Object.assign(new Error("write EPIPE"), { code: "EPIPE" })
  if (typeof done === "function") process.nextTick(() => done(error))
  return false
}

/** Closes a client and returns how long its transport took. */
const timedClose = async (client: Client): Promise<number> => {
  const started = performance.now()
  await client.close()
  return performance.now() - started
}

/** Asserts that nothing of the group and nothing below us remains. */
const expectAllGone = async (pgid: number): Promise<void> => {
  expect(processGroupAlive(pgid)).toBe(false)
  expect(await descendantsOf(process.pid)).toEqual([])
}

describe("ProcessGroupStdioTransport", () => {
  it("a message it could not send rejects with SendFailed, which the pool reads as never sent", async () => {
    const transport = makeTransport({ command: process.execPath, args: [everythingServer, "stdio"] })
    const client = await connect(transport)
    const pgid = pidOf(transport)
    // The server's stdin pipe breaks while the transport still thinks it is open.
    const child: unknown = Reflect.get(transport, "child")
    if (!(child instanceof ChildProcess)) throw new Error("the transport has no child process")
    child.stdin?.destroy()
    const failure: unknown = await client.ping().then(
      () => undefined,
      (error: unknown) => error
    )
    expect(failure).toBeInstanceOf(SendFailed)
    const classified = classify(failure, {
      serverName: "fx",
      method: "ping",
      transport: "stdio",
      scrub: (text) => text
    })
    expect(classified._tag === "Connection" && classified.error.requestSent).toBe(false)
    await client.close()
    await expectAllGone(pgid)
  })

  it("writes the messages sent in one tick as one chunk, in order, each answered", async () => {
    const transport = makeTransport({ command: process.execPath, args: [serverPath] })
    const client = await connect(transport)
    const child: unknown = Reflect.get(transport, "child")
    if (!(child instanceof ChildProcess) || child.stdin === null) throw new Error("the transport has no child process")
    const write = vi.spyOn(child.stdin, "write")
    const chunks = (): Array<string> => write.mock.calls.map(([chunk]) => String(chunk))
    const texts = Array.from({ length: 50 }, (_, i) => `burst ${i}`)
    const answers = await Promise.all(texts.map((text) => client.callTool({ name: "echo", arguments: { text } })))
    expect(answers.map(textOf)).toEqual(texts)
    expect(chunks()).toHaveLength(1)
    const sent = chunks()
      .join("")
      .split("\n")
      .filter((line) => line.length > 0)
    expect(
      sent.map((line) => (JSON.parse(line) as { params: { arguments: { text: string } } }).params.arguments.text)
    ).toEqual(texts)
    // The next tick's message is a chunk of its own.
    expect(textOf(await client.callTool({ name: "echo", arguments: { text: "alone" } }))).toBe("alone")
    expect(chunks()).toHaveLength(2)
  })

  it("rejects a message whose pipe closed before the end of its tick with SendFailed, unwritten", async () => {
    const transport = makeTransport({ command: process.execPath, args: [serverPath] })
    const client = await connect(transport)
    const child: unknown = Reflect.get(transport, "child")
    if (!(child instanceof ChildProcess) || child.stdin === null) throw new Error("the transport has no child process")
    const write = vi.spyOn(child.stdin, "write")
    // Queued in this tick, then the pipe goes before the queue is written.
    const pinged = client.ping().then(
      () => undefined,
      (error: unknown) => error
    )
    child.stdin.destroy()
    const failure = await pinged
    expect(failure).toBeInstanceOf(SendFailed)
    expect(failure).toMatchObject({ message: expect.stringContaining("Not connected") })
    expect(write).not.toHaveBeenCalled()
  })

  it("rejects every message of a chunk the pipe refused with SendFailed", async () => {
    const transport = makeTransport({ command: process.execPath, args: [serverPath] })
    const client = await connect(transport)
    const child: unknown = Reflect.get(transport, "child")
    if (!(child instanceof ChildProcess) || child.stdin === null) throw new Error("the transport has no child process")
    const stdin = child.stdin
    vi.spyOn(stdin, "write").mockImplementation(brokenPipe)
    const failures = await Promise.all(
      [1, 2, 3].map((n) =>
        client.callTool({ name: "echo", arguments: { text: `lost ${n}` } }).then(
          () => undefined,
          (error: unknown) => error
        )
      )
    )
    for (const failure of failures) {
      expect(failure).toBeInstanceOf(SendFailed)
      expect(failure).toMatchObject({ message: expect.stringContaining("EPIPE") })
    }
  })

  it("carries a session with the everything server and closes its group promptly", async () => {
    const transport = makeTransport({ command: process.execPath, args: [everythingServer, "stdio"] })
    const client = await connect(transport)
    const pgid = pidOf(transport)
    const { tools } = await client.listTools()
    expect(tools.map((tool) => tool.name)).toContain("echo")
    const result = await client.callTool({ name: "echo", arguments: { message: "hello pool" } })
    expect(textOf(result)).toContain("hello pool")
    expect(processGroupAlive(pgid)).toBe(true)

    const elapsed = await timedClose(client)
    expect(elapsed).toBeLessThan(500)
    const exit = await transport.exited
    expect(exit.code !== null || exit.signal !== null).toBe(true)
    await expectAllGone(pgid)
  })

  it.each([
    { name: "sh -c (sh stays the parent)", command: "sh", args: () => ["-c", '"$NODE" "$SERVER"; true'] },
    { name: "a node wrapper", command: process.execPath, args: () => [wrapperPath, serverPath] }
  ])("ends the grandchild server started through $name", async ({ command, args }) => {
    const transport = makeTransport({
      command,
      args: args(),
      env: { NODE: process.execPath, SERVER: serverPath, KEEP_ALIVE: "1" }
    })
    const client = await connect(transport)
    const pgid = pidOf(transport)
    const below = await descendantsOf(process.pid)
    const server = below.find((info) => info.ppid === pgid)
    expect(server?.command).toContain(serverPath)
    expect(server?.pgid).toBe(pgid)
    expect(textOf(await client.callTool({ name: "echo", arguments: { text: "via wrapper" } }))).toBe("via wrapper")

    const elapsed = await timedClose(client)
    expect(elapsed).toBeLessThan(500)
    await expectAllGone(pgid)
  })

  it("ends several servers behind sh closed at once, none waiting for the grace period", async () => {
    const started = Array.from({ length: 4 }, () =>
      makeTransport({
        command: "sh",
        args: ["-c", '"$NODE" "$SERVER"; true'],
        env: { NODE: process.execPath, SERVER: serverPath, KEEP_ALIVE: "1" }
      })
    )
    const connected = await Promise.all(started.map(connect))
    const groups = started.map(pidOf)

    const elapsed = await Promise.all(connected.map(timedClose))
    // Each group is gone well before its 2 s grace period, though its server is an orphan when
    // it exits (a zombie, where the init does not reap).
    for (const ms of elapsed) expect(ms).toBeLessThan(1_000)
    for (const pgid of groups) await expectAllGone(pgid)
  })

  it("waits for a member of the group that holds none of its pipes and takes its time on SIGTERM", async () => {
    // The helper closed its stdio, so the pipes close with the server: the group is not gone yet.
    const helper = `process.on("SIGTERM", () => setTimeout(() => process.exit(0), 300)); setInterval(() => {}, 60_000)`
    const transport = makeTransport({
      command: "sh",
      args: ["-c", `"$NODE" -e '${helper}' </dev/null >/dev/null 2>&1 & exec "$NODE" "$SERVER"`],
      env: { NODE: process.execPath, SERVER: serverPath }
    })
    const client = await connect(transport)
    const pgid = pidOf(transport)
    expect(textOf(await client.callTool({ name: "echo", arguments: { text: "with helper" } }))).toBe("with helper")
    const below = await descendantsOf(process.pid)
    expect(below.filter((info) => info.pgid === pgid)).toHaveLength(2)

    const elapsed = await timedClose(client)
    // Not before the helper has gone, and by itself: well before the 2 s grace period ends.
    expect(elapsed).toBeGreaterThanOrEqual(250)
    expect(elapsed).toBeLessThan(1_500)
    await expect(transport.exited).resolves.toMatchObject({ signal: "SIGTERM" })
    await expectAllGone(pgid)
  })

  it.each([
    { name: "a node server", command: process.execPath, args: () => [serverPath] },
    { name: "sh with trap '' TERM", command: "sh", args: () => ["-c", `trap '' TERM; "$NODE" "$SERVER"; true`] }
  ])("escalates to SIGKILL after the grace period for $name deaf to SIGTERM", async ({ command, args }) => {
    const transport = makeTransport({
      command,
      args: args(),
      env: { NODE: process.execPath, SERVER: serverPath, IGNORE_TERM: "1" },
      killGracePeriodMs: 200
    })
    const client = await connect(transport)
    const pgid = pidOf(transport)
    expect(textOf(await client.callTool({ name: "echo", arguments: { text: "deaf" } }))).toBe("deaf")

    const elapsed = await timedClose(client)
    expect(elapsed).toBeGreaterThanOrEqual(190)
    expect(elapsed).toBeLessThan(1_000)
    await expect(transport.exited).resolves.toMatchObject({ signal: "SIGKILL" })
    await expectAllGone(pgid)
  })

  it("rejects start() for a command that does not exist, naming it", async () => {
    const command = "mcp-pool-no-such-command-7f3a"
    const transport = makeTransport({ command })
    const closed = vi.fn()
    listen(transport, { onclose: closed })
    await expect(transport.start()).rejects.toThrow(command)
    expect(transport.pid).toBeUndefined()
    await expect(transport.exited).resolves.toEqual({ code: null, signal: null })
    await expect(transport.send({ jsonrpc: "2.0", method: "ping", id: 1 })).rejects.toThrow("Not connected")
    await transport.close()
    await transport.close()
    expect(closed).toHaveBeenCalledTimes(1)
    expect(await descendantsOf(process.pid)).toEqual([])

    const viaClient = new Client({ name: "stdio-transport-test", version: "0.0.0" }, { capabilities: {} })
    await expect(viaClient.connect(makeTransport({ command }))).rejects.toThrow(command)
  })

  it.each([
    { name: "the server", command: process.execPath, args: () => [serverPath] },
    { name: "the sh wrapper, leaving its child", command: "sh", args: () => ["-c", '"$NODE" "$SERVER"; true'] }
  ])("reports $name killed from outside and fails the request in flight", async ({ command, args }) => {
    const stderr: Array<string> = []
    const transport = makeTransport({
      command,
      args: args(),
      env: { NODE: process.execPath, SERVER: serverPath, KEEP_ALIVE: "1" },
      onStderr: (line) => stderr.push(line)
    })
    const errors: Array<Error> = []
    const closed = vi.fn()
    const exits = vi.fn()
    listen(transport, { onerror: (error) => errors.push(error), onclose: closed, onexit: exits })
    const client = await connect(transport)
    const pgid = pidOf(transport)

    const inFlight = client.callTool({ name: "hang", arguments: {} })
    await waitFor(() => stderr.includes("hang started"), 5_000)
    process.kill(pgid, "SIGKILL")

    await expect(inFlight).rejects.toThrow(/Connection closed/)
    await waitFor(() => closed.mock.calls.length > 0, 5_000)
    expect(closed).toHaveBeenCalledTimes(1)
    await transport.exited
    expect(exits).toHaveBeenCalledWith({ code: null, signal: "SIGKILL" })
    expect(errors.map((error) => error.message)).toContainEqual(
      expect.stringMatching(/server process .* killed by SIGKILL/)
    )
    // onclose came at once; what is left of the group is ended behind it, without a close().
    await waitFor(() => !processGroupAlive(pgid), 5_000)
    await expectAllGone(pgid)
    await expect(client.listTools()).rejects.toThrow()
    await transport.close()
    expect(closed).toHaveBeenCalledTimes(1)
  })

  it("hands stderr lines to onStderr and never to our stderr", async () => {
    const write = vi.spyOn(process.stderr, "write")
    try {
      const lines: Array<string> = []
      const transport = makeTransport({
        command: process.execPath,
        args: [serverPath],
        onStderr: (line) => lines.push(line)
      })
      const client = await connect(transport)
      await waitFor(() => lines.length >= 2, 5_000)
      expect(lines.slice(0, 2)).toEqual(["fixture stderr one", "fixture stderr two"])
      await client.close()
      const written = write.mock.calls.map((call) => String(call[0])).join("")
      expect(written).not.toContain("fixture stderr")
    } finally {
      write.mockRestore()
    }
  })

  it.each(["exit", "SIGTERM"])("SIGKILLs the groups still open when the host process ends (%s)", async (end) => {
    const output = await new Promise<string>((resolve, reject) => {
      execFile(
        process.execPath,
        [hostPath],
        { timeout: 10_000, env: { ...process.env, HOST_END: end } },
        (error, stdout) => {
          // A host ended by SIGTERM reports the signal: that is the point of this case.
          if (error === null || (end === "SIGTERM" && error.signal === "SIGTERM")) resolve(stdout)
          else reject(error)
        }
      )
    })
    const parsed: unknown = JSON.parse(output)
    const pgid = typeof parsed === "object" && parsed !== null && "pid" in parsed ? Number(parsed.pid) : NaN
    expect(Number.isInteger(pgid)).toBe(true)
    track.group(pgid)
    await waitFor(() => !processGroupAlive(pgid), 2_000)
    // The host is gone, so its orphans would hang below init: look at the whole table.
    const everything = await descendantsOf(1)
    expect(everything.filter((info) => info.pgid === pgid || info.command.includes(hostMarker))).toEqual([])
  })
})
