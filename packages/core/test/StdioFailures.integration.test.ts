/**
 * Integration tests of how the stdio transport meets a failing server, under the real SDK
 * `Client`: a closed stdout or a broken stdin ends the connection at once; stderr and exit are kept.
 */
import { ChildProcess } from "node:child_process"
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest"
import { descendantsOf, processGroupAlive, waitFor } from "@mcp-pool/test-servers"
import type { ProcessGroupStdioTransport } from "../src/internal/stdioTransport.js"
import { type Fixtures, makeTracker, pidOf, removeFixtures, writeFixtures } from "./StdioTestKit.js"

let fixtures: Fixtures | undefined
const track = makeTracker()

beforeAll(async () => {
  fixtures = await writeFixtures()
})

afterAll(() => removeFixtures(fixtures))

afterEach(async () => {
  await track.cleanup()
  expect(await descendantsOf(process.pid)).toEqual([])
})

const serverPath = (): string => {
  if (fixtures === undefined) throw new Error("fixtures not written")
  return fixtures.faultyServer
}

/** A request's outcome: the error it rejected with, and how long it took to settle. */
const settle = async (request: Promise<unknown>): Promise<{ readonly error: unknown; readonly ms: number }> => {
  const started = performance.now()
  const error = await request.then(
    () => undefined,
    (failure: unknown) => failure
  )
  return { error, ms: performance.now() - started }
}

/** A faulty server's transport with its callbacks recorded. */
const faulty = (env: Readonly<Record<string, string>> = {}) => {
  const errors: Array<string> = []
  const closed = vi.fn()
  const transport = track.transport({ command: process.execPath, args: [serverPath()], env, killGracePeriodMs: 300 })
  Object.assign(transport, {
    onerror: (error: Error) => errors.push(error.message),
    onclose: closed
  } satisfies Pick<ProcessGroupStdioTransport, "onerror" | "onclose">)
  return { transport, errors, closed }
}

/** How long a request may wait for an answer: far longer than any failure may take to be seen. */
const REQUEST_TIMEOUT_MS = 10_000

describe("ProcessGroupStdioTransport with a failing server", () => {
  it.each([
    { name: "that dies on SIGTERM", env: {} },
    { name: "deaf to SIGTERM", env: { IGNORE_TERM: "1" } }
  ])("fails the call in flight at once when the server, $name, closes its stdout", async ({ env }) => {
    const { transport, errors, closed } = faulty(env)
    const client = await track.connect(transport)
    const pgid = pidOf(transport)

    const call = client.callTool({ name: "close-stdout", arguments: {} }, undefined, { timeout: REQUEST_TIMEOUT_MS })
    const { error, ms } = await settle(call)
    expect(error).toMatchObject({ message: expect.stringMatching(/Connection closed/) })
    expect(ms).toBeLessThan(500)
    expect(closed).toHaveBeenCalledTimes(1)
    expect(errors).toContainEqual(`MCP server "${process.execPath}" (pid ${pgid}) closed its stdout`)
    const next = await settle(client.ping({ timeout: REQUEST_TIMEOUT_MS }))
    expect(next.error).toBeInstanceOf(Error)
    expect(next.ms).toBeLessThan(500)

    // The server, still running when its stdout closed, is ended without a close() (SIGKILL
    // after the grace period for the deaf one).
    await waitFor(() => !processGroupAlive(pgid), 5_000)
    await transport.close()
    expect(transport.exitStatus).toEqual({ code: null, signal: env.IGNORE_TERM === "1" ? "SIGKILL" : "SIGTERM" })
    expect(closed).toHaveBeenCalledTimes(1)
  })

  it("fails the handshake at once when the server closes its stdout before answering it", async () => {
    const { transport, errors } = faulty({ FAULT: "close-stdout-at-initialize", IGNORE_TERM: "1" })
    const started = performance.now()
    await expect(track.connect(transport, { timeout: REQUEST_TIMEOUT_MS })).rejects.toThrow(/Connection closed/)
    expect(performance.now() - started).toBeLessThan(1_000)
    expect(errors).toContainEqual(expect.stringMatching(/closed its stdout/))
    const pgid = pidOf(transport)
    await waitFor(() => !processGroupAlive(pgid), 5_000)
    await transport.close()
  })

  it("closes at once when the server closes its stdin and the next write breaks the pipe", async () => {
    const { transport, errors, closed } = faulty({ IGNORE_TERM: "1" })
    const client = await track.connect(transport)
    const pgid = pidOf(transport)
    await client.callTool({ name: "close-stdin", arguments: {} })
    expect(closed).not.toHaveBeenCalled()

    const { error, ms } = await settle(client.ping({ timeout: REQUEST_TIMEOUT_MS }))
    expect(error).toBeInstanceOf(Error)
    expect(ms).toBeLessThan(500)
    // onclose does not wait for the deaf server's grace period to end.
    await waitFor(() => closed.mock.calls.length > 0, 250)
    expect(errors).toContainEqual(expect.stringMatching(/the stdin pipe of MCP server .* failed: .*EPIPE/))
    await expect(client.ping({ timeout: REQUEST_TIMEOUT_MS })).rejects.toThrow()

    await waitFor(() => !processGroupAlive(pgid), 5_000)
    await transport.close()
    expect(transport.exitStatus).toEqual({ code: null, signal: "SIGKILL" })
  })

  it("closes at once when its end of the server's stdin is destroyed", async () => {
    const { transport, errors, closed } = faulty({ IGNORE_TERM: "1" })
    await track.connect(transport)
    const child: unknown = Reflect.get(transport, "child")
    if (!(child instanceof ChildProcess) || child.stdin === null) throw new Error("the transport has no child process")
    child.stdin.destroy()
    await waitFor(() => closed.mock.calls.length > 0, 250)
    expect(errors).toContainEqual(expect.stringMatching(/the stdin pipe of MCP server .* closed/))
    await transport.close()
    expect(processGroupAlive(pidOf(transport))).toBe(false)
  })

  it("keeps the last stderr lines: at most 20 and 4,096 characters, each cut to 1,024", async () => {
    const { transport } = faulty()
    const client = await track.connect(transport)
    expect(transport.stderrTail()).toEqual([])

    const numbered = Array.from({ length: 25 }, (_, i) => `line ${i + 1}`)
    await client.callTool({ name: "stderr", arguments: { lines: numbered } })
    await waitFor(() => transport.stderrTail().includes("line 25"), 5_000)
    expect(transport.stderrTail()).toEqual(numbered.slice(5))

    const long = Array.from({ length: 5 }, (_, i) => `long ${i + 1} ${"x".repeat(5_000)}`)
    await client.callTool({ name: "stderr", arguments: { lines: [...long, "last"] } })
    await waitFor(() => transport.stderrTail().includes("last"), 5_000)
    const tail = transport.stderrTail()
    expect(tail.at(-1)).toBe("last")
    expect(tail.join("").length).toBeLessThanOrEqual(4_096)
    // Four cut lines would leave no room for "last": the three newest are kept.
    const cut = tail.slice(0, -1)
    expect(cut.map((line) => line.slice(0, 6))).toEqual(["long 3", "long 4", "long 5"])
    for (const line of cut) {
      expect(line).toHaveLength(1_024)
      expect(line.endsWith("x…")).toBe(true)
    }
  })

  it("tells how the server ended, synchronously, once it has", async () => {
    const { transport, errors } = faulty()
    const client = await track.connect(transport)
    expect(transport.exitStatus).toBeUndefined()
    await expect(client.callTool({ name: "exit", arguments: { code: 3 } })).rejects.toThrow(/Connection closed/)
    await transport.exited
    expect(transport.exitStatus).toEqual({ code: 3, signal: null })
    expect(errors).toContainEqual(expect.stringMatching(/exited with code 3/))

    const never = track.transport({ command: "mcp-pool-no-such-command-7f3a" })
    await expect(never.start()).rejects.toThrow()
    expect(never.exitStatus).toEqual({ code: null, signal: null })
  })
})
