/**
 * How a stdio MCP server is started: its options, how it ended, and the spawn of its process as
 * the leader of a new process group.
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process"
import { getDefaultEnvironment } from "@modelcontextprotocol/sdk/client/stdio.js"

/** How to start a stdio MCP server and how long to let it shut down. */
export interface ProcessGroupStdioTransportOptions {
  /** The executable to run, looked up on the `PATH` of `env` (no shell). */
  readonly command: string
  /** Its arguments. */
  readonly args?: ReadonlyArray<string>
  /** Variables merged over `baseEnv`. */
  readonly env?: Readonly<Record<string, string>>
  /** What `env` is merged over; the SDK's default environment (`getDefaultEnvironment()`) when absent. */
  readonly baseEnv?: Readonly<Record<string, string>>
  /** The working directory of the server; ours when absent. */
  readonly cwd?: string
  /** Receives the server's stderr line by line; stderr is never written to our console. */
  readonly onStderr?: (line: string) => void
  /** How long the process group gets between SIGTERM and SIGKILL; 2000 ms when absent. */
  readonly killGracePeriodMs?: number
}

/** How a server process ended: its exit code, or the signal that ended it. */
export interface ProcessExit {
  /** The exit code, or null when a signal ended the process (or it never spawned). */
  readonly code: number | null
  /** The signal that ended the process, or null. */
  readonly signal: NodeJS.Signals | null
}

/** How a server process ended, in words: `exited with code 1`, `was killed by SIGKILL`. */
export const describeExit = (exit: ProcessExit): string =>
  exit.signal !== null ? `was killed by ${exit.signal}` : `exited with code ${String(exit.code)}`

/**
 * Spawns the server as the leader of a new process group (no shell), its environment `env` over
 * `baseEnv` (or the SDK's default environment); throws when `spawn` itself throws.
 */
export const spawnGroupLeader = (options: ProcessGroupStdioTransportOptions): ChildProcessWithoutNullStreams => {
  const { command, args = [], cwd } = options
  return spawn(command, [...args], {
    detached: true,
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...(options.baseEnv ?? getDefaultEnvironment()), ...options.env },
    ...(cwd === undefined ? {} : { cwd }),
    windowsHide: true
  })
}
