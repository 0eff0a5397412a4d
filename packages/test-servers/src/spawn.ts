/**
 * The HTTP fixture server as a child process, for tests that kill, stop and restart a remote
 * server (on the same port): it reads the JSON line the bin prints once listening.
 */
import { spawn } from "node:child_process"
import { createInterface } from "node:readline"
import { fixtureServerPath } from "./paths.js"

/** Options for {@link spawnHttpFixtureServer}. */
export interface SpawnHttpFixtureServerOptions {
  /** The port to listen on; 0 (the default) picks a free port. */
  readonly port?: number
  /** The interface to listen on; defaults to `127.0.0.1`. */
  readonly host?: string
  /** How long to wait for the server to listen, in milliseconds; defaults to 15000. */
  readonly startTimeoutMs?: number
  /** Passed as `--page-size`: the server answers its lists this many items at a time. */
  readonly pageSize?: number
  /** Passed as `--serial`: the server handles one request at a time across all its sessions. */
  readonly serial?: boolean
}

/** A fixture server running over HTTP in a child process. */
export interface SpawnedHttpFixtureServer {
  /** The Streamable HTTP endpoint, `http://HOST:PORT/mcp`. */
  readonly url: string
  /** The legacy SSE endpoint, `http://HOST:PORT/sse`. */
  readonly sseUrl: string
  /** The port it listens on. */
  readonly port: number
  /** The child's process id. */
  readonly pid: number
  /** Sends SIGTERM (SIGKILL after 5 s) and resolves once the child exited; safe to call more than once. */
  stop(): Promise<void>
  /** Sends a signal (default SIGKILL) to the child unless it already exited. */
  kill(signal?: NodeJS.Signals | number): void
  /** Resolves with the child's exit code (null if a signal ended it) once it exited. */
  readonly exited: Promise<number | null>
}

interface ServerLine {
  readonly url: string
  readonly sseUrl: string
  readonly port: number
  readonly pid: number
}

const isServerLine = (value: unknown): value is ServerLine =>
  typeof value === "object" &&
  value !== null &&
  "url" in value &&
  typeof value.url === "string" &&
  "sseUrl" in value &&
  typeof value.sseUrl === "string" &&
  "port" in value &&
  typeof value.port === "number" &&
  "pid" in value &&
  typeof value.pid === "number"

/** Spawns `dist/main.js --transport http` and resolves once it listens. */
export const spawnHttpFixtureServer = async (
  options: SpawnHttpFixtureServerOptions = {}
): Promise<SpawnedHttpFixtureServer> => {
  const args = [
    fixtureServerPath,
    "--transport",
    "http",
    "--port",
    String(options.port ?? 0),
    "--host",
    options.host ?? "127.0.0.1",
    // stdin is a pipe from this process: if this process dies, the server follows.
    "--exit-with-stdin",
    ...(options.pageSize === undefined ? [] : ["--page-size", String(options.pageSize)]),
    ...(options.serial === true ? ["--serial"] : [])
  ]
  const child = spawn(process.execPath, args, { stdio: ["pipe", "pipe", "pipe"] })
  let stderrTail = ""
  child.stderr.setEncoding("utf8")
  child.stderr.on("data", (chunk: string) => {
    stderrTail = (stderrTail + chunk).slice(-4000)
  })
  let exitCode: number | null | undefined
  const exited = new Promise<number | null>((resolve) => {
    child.once("exit", (code) => {
      exitCode = code
      resolve(code)
    })
    // A child that could not be spawned never emits "exit".
    child.once("error", () => {
      if (child.pid === undefined) {
        exitCode = null
        resolve(null)
      }
    })
  })

  const kill = (signal: NodeJS.Signals | number = "SIGKILL"): void => {
    if (exitCode === undefined) child.kill(signal)
  }

  let stopping: Promise<void> | undefined
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (exitCode !== undefined) return
      kill("SIGTERM")
      const escalate = setTimeout(() => kill("SIGKILL"), 5000)
      await exited
      clearTimeout(escalate)
    })()
    return stopping
  }

  const lines = createInterface({ input: child.stdout })
  try {
    const line = await new Promise<ServerLine>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`fixture HTTP server did not start in time; stderr:\n${stderrTail}`)),
        options.startTimeoutMs ?? 15_000
      )
      child.once("error", (error) => {
        clearTimeout(timer)
        reject(error)
      })
      void exited.then((code) => {
        clearTimeout(timer)
        reject(new Error(`fixture HTTP server exited (code ${String(code)}) before listening; stderr:\n${stderrTail}`))
      })
      lines.once("line", (text) => {
        clearTimeout(timer)
        try {
          const parsed: unknown = JSON.parse(text)
          if (isServerLine(parsed)) resolve(parsed)
          else reject(new Error(`fixture HTTP server printed an unexpected line: ${text}`))
        } catch {
          reject(new Error(`fixture HTTP server printed an unexpected line: ${text}`))
        }
      })
    })
    // Keep draining stdout so the child never blocks on a full pipe.
    child.stdout.resume()
    return { url: line.url, sseUrl: line.sseUrl, port: line.port, pid: line.pid, stop, kill, exited }
  } catch (error) {
    await stop()
    throw error
  } finally {
    lines.close()
  }
}
