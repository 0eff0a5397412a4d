/**
 * Starts a long-running example program (an HTTP app) as a child process for a test: waits
 * for the line that says where it listens, and stops it with a signal.
 */
import { deepStrictEqual, ok, strictEqual } from "node:assert/strict"
import { spawn } from "node:child_process"
import { createInterface } from "node:readline"
import { descendantsOf, type ProcessInfo } from "./processes.js"

/** A running example. */
export interface RunningExample {
  /** The base URL the example printed, e.g. `http://127.0.0.1:9888`. */
  readonly url: string
  readonly pid: number
  /** Everything the example printed so far (stdout and stderr). */
  readonly output: () => string
  /** Its descendants now (the MCP servers it started). */
  readonly descendants: () => Promise<ReadonlyArray<ProcessInfo>>
  /** Sends `signal` and resolves with the exit code (rejects if it does not exit in time). */
  readonly stop: (signal?: NodeJS.Signals, timeoutMs?: number) => Promise<number | null>
}

/**
 * Runs `node <script>` in `cwd` with `env` added, until it prints a line matching
 * `listening on (http://\S+)`.
 */
export const startExample = async (options: {
  readonly cwd: string
  readonly script: string
  readonly env?: Readonly<Record<string, string>>
  readonly startTimeoutMs?: number
}): Promise<RunningExample> => {
  const child = spawn(process.execPath, [options.script], {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdio: ["ignore", "pipe", "pipe"]
  })
  let output = ""
  child.stderr.setEncoding("utf8")
  child.stderr.on("data", (chunk: string) => {
    output += chunk
  })
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
  const lines = createInterface({ input: child.stdout })
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`example did not start in time; output:\n${output}`)),
      options.startTimeoutMs ?? 30_000
    )
    void exited.then((code) => {
      clearTimeout(timer)
      reject(new Error(`example exited (code ${String(code)}) before listening; output:\n${output}`))
    })
    lines.on("line", (line) => {
      output += `${line}\n`
      const found = /listening on (http:\/\/\S+)/.exec(line)?.[1]
      if (found !== undefined) {
        clearTimeout(timer)
        resolve(found)
      }
    })
  })
  const pid = child.pid ?? -1
  return {
    url,
    pid,
    output: () => output,
    descendants: () => descendantsOf(pid),
    stop: async (signal = "SIGTERM", timeoutMs = 15_000) => {
      child.kill(signal)
      const timeout = new Promise<never>((_, reject) =>
        setTimeout(() => {
          child.kill("SIGKILL")
          reject(new Error(`example did not exit within ${timeoutMs} ms of ${signal}; output:\n${output}`))
        }, timeoutMs).unref()
      )
      return Promise.race([exited, timeout])
    }
  }
}

const routes: ReadonlyArray<readonly [method: string, path: string, status: number]> = [
  ["GET", "/api/v1/mcp/status", 200],
  ["GET", "/api/v1/mcp/pools", 200],
  ["GET", "/api/v1/mcp/pools/fixture", 200],
  ["GET", "/api/v1/mcp/pools/nope", 404],
  ["GET", "/api/v1/mcp/alerts?severity=warning&limit=10", 200],
  ["GET", "/api/v1/mcp/alerts?severity=urgent", 400],
  ["GET", "/api/v1/mcp/servers", 200],
  ["GET", "/api/v1/mcp/metrics/summary", 200],
  ["GET", "/api/v1/mcp/config", 200],
  ["POST", "/api/v1/mcp/pools/fixture/health-check", 200]
]

/**
 * Exercises an example app that pools a server named `fixture` and mounts the monitoring
 * API at the default prefix: its own routes, every monitoring route, then SIGTERM. Throws
 * (with node's assert) on the first thing that is not as it should be; answers what it saw.
 */
export const checkMonitoredApp = async (
  app: RunningExample,
  name: string
): Promise<{ readonly answers: ReadonlyArray<readonly [string, number]>; readonly output: string }> => {
  const answers: Array<readonly [string, number]> = []
  try {
    ok(app.url.startsWith("http://127.0.0.1:"), `binds to 127.0.0.1: ${app.url}`)
    const home = await fetch(`${app.url}/`)
    deepStrictEqual(await home.json(), { app: name, monitoring: "/api/v1/mcp/status" })
    const call = await fetch(`${app.url}/tools/fixture/echo`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ text: "through the pool" })
    })
    strictEqual(call.status, 200)
    deepStrictEqual(((await call.json()) as { content: unknown }).content, [{ type: "text", text: "through the pool" }])
    const unknown = await fetch(`${app.url}/tools/nope/echo`, { method: "POST" })
    strictEqual(unknown.status, 404)
    for (const [method, path, status] of routes) {
      const response = await fetch(`${app.url}${path}`, { method })
      const body: unknown = await response.json()
      strictEqual(response.status, status, `${method} ${path}: ${JSON.stringify(body)}`)
      ok(typeof body === "object" && body !== null, `${method} ${path} answers a JSON object`)
      answers.push([`${method} ${path}`, response.status])
    }
    const servers = await app.descendants()
    ok(servers.length >= 2, `the app runs its MCP servers (${servers.length})`)
    const code = await app.stop("SIGTERM")
    strictEqual(code, 0, `exit code after SIGTERM; output:\n${app.output()}`)
    const survivors = servers.filter((server) => {
      try {
        process.kill(server.pid, 0)
        return true
      } catch {
        return false
      }
    })
    deepStrictEqual(survivors, [], "no MCP server process is left")
    return { answers, output: app.output() }
  } finally {
    await app.stop("SIGKILL", 5_000).catch(() => undefined)
  }
}
