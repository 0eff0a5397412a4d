/**
 * The other launchers: the npx-style wrapper (the server runs as a grandchild) and the reference
 * `@modelcontextprotocol/server-everything`, both driven over stdio by the SDK `Client`.
 */
import { spawn } from "node:child_process"
import { existsSync } from "node:fs"
import { mkdtemp, readdir, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { afterEach, describe, expect, it } from "vitest"
import {
  fixtureServerPath,
  fixtureStdioConfig,
  serverEverythingPath,
  serverEverythingStdioConfig,
  wrapperPath
} from "../src/index.js"

const clients: Array<Client> = []
const pids: Array<number> = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()))
  for (const pid of pids.splice(0)) {
    try {
      process.kill(pid, "SIGKILL")
    } catch {
      // already gone
    }
  }
})

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

describe("launch configs", () => {
  it("point at existing files and run with this Node", () => {
    for (const path of [fixtureServerPath, wrapperPath, serverEverythingPath]) expect(existsSync(path)).toBe(true)
    expect(fixtureStdioConfig(["--name", "x"])).toEqual({
      command: process.execPath,
      args: [fixtureServerPath, "--name", "x"]
    })
    expect(serverEverythingStdioConfig()).toEqual({ command: process.execPath, args: [serverEverythingPath, "stdio"] })
  })
})

/**
 * Runs the fixture bin with `args`; once it says it is ready, `closeStdin` ends its stdin and
 * `kill` sends it SIGKILL.
 */
const runBin = (
  args: ReadonlyArray<string>,
  closeStdin: boolean,
  options: { readonly env?: NodeJS.ProcessEnv; readonly kill?: boolean } = {}
): Promise<{ code: number | null; stdout: string; stderr: string }> =>
  new Promise((resolve) => {
    const child = spawn(process.execPath, [fixtureServerPath, ...args], {
      stdio: ["pipe", "pipe", "pipe"],
      ...(options.env === undefined ? {} : { env: { ...process.env, ...options.env } })
    })
    if (child.pid !== undefined) pids.push(child.pid)
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString("utf8")
    })
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString("utf8")
      if (closeStdin && stderr.includes("ready")) child.stdin.end()
      if (options.kill === true && stderr.includes("ready")) child.kill("SIGKILL")
    })
    child.on("exit", (code) => resolve({ code, stdout, stderr }))
  })

describe("fixture bin", () => {
  it("over stdio: says it is ready on stderr, nothing on stdout, and exits 0 when stdin ends", async () => {
    const { code, stdout, stderr } = await runBin([], true)
    expect(code).toBe(0)
    expect(stdout).toBe("")
    expect(stderr).toBe("fixture server ready (stdio)\n")
  })

  it("over http with --exit-with-stdin: prints one JSON line and exits 0 when stdin ends", async () => {
    const { code, stdout } = await runBin(["--transport", "http", "--exit-with-stdin"], true)
    expect(code).toBe(0)
    const lines = stdout.trim().split("\n")
    expect(lines).toHaveLength(1)
    const line: unknown = JSON.parse(lines[0] ?? "")
    expect(line).toEqual({
      url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/mcp$/),
      sseUrl: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/sse$/),
      port: expect.any(Number),
      pid: expect.any(Number)
    })
  })

  it("writes Node's compile cache once ready, so that a server ended by SIGKILL leaves it too", async () => {
    const cache = await mkdtemp(join(tmpdir(), "mcp-pool-compile-cache-"))
    try {
      const { code, stderr } = await runBin([], false, { env: { NODE_COMPILE_CACHE: cache }, kill: true })
      expect(code).toBeNull()
      expect(stderr).toBe("fixture server ready (stdio)\n")
      const entries = await readdir(cache, { recursive: true })
      expect(entries.length).toBeGreaterThan(1)
    } finally {
      await rm(cache, { recursive: true, force: true })
    }
  })

  it("over stdio: serves the same with the compile cache turned off", async () => {
    const { code, stderr } = await runBin([], true, { env: { NODE_DISABLE_COMPILE_CACHE: "1" } })
    expect(code).toBe(0)
    expect(stderr).toBe("fixture server ready (stdio)\n")
  })

  it("refuses unknown arguments with exit code 2", async () => {
    const { code, stderr } = await runBin(["--bogus"], false)
    expect(code).toBe(2)
    expect(stderr).toContain("unknown argument: --bogus")
  })
})

describe("wrapper", () => {
  it("runs the server as a grandchild that answers through inherited stdio", async () => {
    const fixture = fixtureStdioConfig()
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [wrapperPath, fixture.command, ...fixture.args],
      stderr: "ignore"
    })
    const client = new Client({ name: "fixture-test", version: "1.0.0" })
    clients.push(client)
    await client.connect(transport)
    const content = (await client.callTool({ name: "pid" })).content
    const serverPid = Array.isArray(content) && typeof content[0]?.text === "string" ? Number(content[0].text) : NaN
    pids.push(serverPid)
    expect(serverPid).toBeGreaterThan(0)
    expect(serverPid).not.toBe(transport.pid)
  })

  it("exits with the child's code and forwards no signal", async () => {
    const exitCode = await new Promise<number | null>((resolve) => {
      spawn(process.execPath, [wrapperPath, process.execPath, "-e", "process.exit(5)"], { stdio: "ignore" }).on(
        "exit",
        resolve
      )
    })
    expect(exitCode).toBe(5)

    // SIGTERM the wrapper: the grandchild (which prints its pid, then waits) survives it.
    const wrapper = spawn(
      process.execPath,
      [wrapperPath, process.execPath, "-e", "console.log(process.pid); setTimeout(() => {}, 30000)"],
      { stdio: ["ignore", "pipe", "ignore"] }
    )
    const grandchild = await new Promise<number>((resolve) => {
      wrapper.stdout.once("data", (chunk: Buffer) => resolve(Number(chunk.toString("utf8").trim())))
    })
    pids.push(grandchild)
    const wrapperExit = new Promise<NodeJS.Signals | null>((resolve) =>
      wrapper.on("exit", (_code, signal) => resolve(signal))
    )
    wrapper.kill("SIGTERM")
    expect(await wrapperExit).toBe("SIGTERM")
    expect(isAlive(grandchild)).toBe(true)
  })
})

describe("server-everything", () => {
  it("answers over stdio", async () => {
    const client = new Client({ name: "fixture-test", version: "1.0.0" })
    clients.push(client)
    await client.connect(new StdioClientTransport({ ...serverEverythingStdioConfig(), stderr: "ignore" }))
    const { tools } = await client.listTools()
    expect(tools.map((tool) => tool.name)).toContain("echo")
    const result = await client.callTool({ name: "echo", arguments: { message: "hi" } })
    expect(JSON.stringify(result.content)).toContain("hi")
  })
})
