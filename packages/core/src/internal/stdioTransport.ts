/**
 * A stdio MCP client transport that runs the server in its own process group and ends the
 * whole group (wrappers such as `npx`, `uvx` or `sh -c` and their children) on close.
 */
import { onExit } from "signal-exit"
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { readdir } from "node:fs/promises"
import { setImmediate as nextTurn } from "node:timers/promises"
import { getDefaultEnvironment } from "@modelcontextprotocol/sdk/client/stdio.js"
import { ReadBuffer, serializeMessage } from "@modelcontextprotocol/sdk/shared/stdio.js"
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js"
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js"

/** How to start a stdio MCP server and how long to let it shut down. */
export interface ProcessGroupStdioTransportOptions {
  /** The executable to run, looked up on the `PATH` of `env` (no shell). */
  readonly command: string
  /** Its arguments. */
  readonly args?: ReadonlyArray<string>
  /** Variables merged over the SDK's default environment (`getDefaultEnvironment()`). */
  readonly env?: Readonly<Record<string, string>>
  /** The working directory of the server; ours when absent. */
  readonly cwd?: string
  /** Receives the server's stderr line by line; stderr is never written to our console. */
  readonly onStderr?: (line: string) => void
  /** How long the process group gets between SIGTERM and SIGKILL; 2000 ms when absent. */
  readonly killGracePeriodMs?: number
}

/** Settles the promise `send` returned for one message. */
interface Settler {
  readonly resolve: () => void
  readonly reject: (error: SendFailed) => void
}

/** How a server process ended: its exit code, or the signal that ended it. */
export interface ProcessExit {
  /** The exit code, or null when a signal ended the process (or it never spawned). */
  readonly code: number | null
  /** The signal that ended the process, or null. */
  readonly signal: NodeJS.Signals | null
}

/**
 * A transport's `send` rejected: the message was not handed to the server as far as we know.
 * (Defined here, not in classify, so that this module imports nothing of the library.)
 */
export class SendFailed extends Error {
  override readonly cause: unknown
  constructor(cause: unknown) {
    const code = cause instanceof Error && "code" in cause && typeof cause.code === "string" ? ` (${cause.code})` : ""
    super(`send failed: ${cause instanceof Error ? cause.message : String(cause)}${code}`)
    this.cause = cause
  }
}

const DEFAULT_KILL_GRACE_PERIOD_MS = 2_000
/** How long to wait for a group to vanish after SIGKILL before giving up. */
const AFTER_SIGKILL_WAIT_MS = 1_000
/** How long to wait, once the group is gone, for the last buffered stdout bytes. */
const STDOUT_DRAIN_WAIT_MS = 100
/** Polling a group that outlives its leader's pipes: the first delay, doubled up to the last. */
const FIRST_POLL_MS = 1
const MAX_POLL_MS = 20
/** While the pipes are still open, the process table is read at most this often. */
const SLOW_SCAN_MS = 100
/** Process-table entries read between two turns of the event loop. */
const SCAN_CHUNK = 64
/** Longest stderr line kept before it is handed on unfinished. */
const MAX_STDERR_LINE = 64 * 1024

const isWindows = process.platform === "win32"
const isLinux = process.platform === "linux"

const errnoCode = (error: unknown): string | undefined =>
  error instanceof Error && "code" in error && typeof error.code === "string" ? error.code : undefined

const asError = (value: unknown): Error => (value instanceof Error ? value : new Error(String(value)))

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

// ---------------------------------------------------------------------------------------------
// Host-exit registry
// ---------------------------------------------------------------------------------------------

/** Process groups (by pgid, which is the leader's pid) that we started and that may still live. */
const liveGroups = new Set<number>()
let exitHookInstalled = false

const killAllOnExit = (): void => {
  for (const pgid of liveGroups) {
    try {
      process.kill(isWindows ? pgid : -pgid, "SIGKILL")
    } catch (error) {
      // ESRCH: the group is already gone. Anything else cannot be acted on while the host
      // exits, so it is reported on stderr (synchronous for pipes and files).
      if (errnoCode(error) !== "ESRCH") {
        process.stderr.write(`mcp-pool: could not kill MCP server process group ${pgid}: ${String(error)}\n`)
      }
    }
  }
  liveGroups.clear()
}

/**
 * Remembers a process group so that it is SIGKILLed if the host process exits while it lives:
 * a normal exit, `process.exit()`, or a fatal signal (SIGINT, SIGTERM, SIGHUP, ...) that the
 * application does not handle itself. `signal-exit` re-raises such a signal after the groups
 * are killed, so the host still ends as it would have.
 */
const registerGroup = (pgid: number): void => {
  if (!exitHookInstalled) {
    exitHookInstalled = true
    onExit(killAllOnExit)
  }
  liveGroups.add(pgid)
}

const unregisterGroup = (pgid: number): void => {
  liveGroups.delete(pgid)
}

// ---------------------------------------------------------------------------------------------
// Process groups
// ---------------------------------------------------------------------------------------------

/** Sends `signal` to every process of the group; false when the group no longer exists. */
const signalGroup = (pgid: number, signal: NodeJS.Signals | 0): boolean => {
  try {
    process.kill(isWindows ? pgid : -pgid, signal)
    return true
  } catch (error) {
    if (errnoCode(error) === "ESRCH") return false
    throw error
  }
}

/** The state letter and pgid in a `/proc/<pid>/stat` line (the command may hold spaces and parens). */
const parseStat = (stat: string): { readonly state: string; readonly pgid: number } | undefined => {
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  const state = fields[0]
  const pgid = Number(fields[2])
  return state === undefined || !Number.isInteger(pgid) ? undefined : { state, pgid }
}

/**
 * The `/proc/<pid>/stat` of a process, or undefined when it has gone meanwhile. Synchronous:
 * `/proc` is answered from memory, and one read costs a few µs where an asynchronous one costs
 * a round trip through libuv's thread pool.
 */
const readStat = (pid: string): { readonly state: string; readonly pgid: number } | undefined => {
  try {
    return parseStat(readFileSync(`/proc/${pid}/stat`, "utf8"))
  } catch (error) {
    const code = errnoCode(error)
    if (code === "ENOENT" || code === "ESRCH") return undefined
    throw error
  }
}

const isPid = (name: string): boolean => {
  const first = name.charCodeAt(0)
  return first >= 48 && first <= 57
}

/** The process groups that have a member that is not a zombie, from one pass over `/proc`. */
const readLiveGroups = async (): Promise<ReadonlySet<number>> => {
  const live = new Set<number>()
  let read = 0
  for (const name of await readdir("/proc")) {
    if (!isPid(name)) continue
    const stat = readStat(name)
    if (stat !== undefined && stat.state !== "Z") live.add(stat.pgid)
    // A host with thousands of processes must not block the event loop for the whole pass.
    if (++read % SCAN_CHUNK === 0) await nextTurn()
  }
  return live
}

let pendingScan: Promise<ReadonlySet<number>> | undefined

/**
 * The live process groups, from a pass over `/proc` that starts after this call. Groups that
 * close at the same time share one pass: callers that come before it starts join it.
 */
const groupsWithLiveMembers = (): Promise<ReadonlySet<number>> => {
  pendingScan ??= nextTurn().then(() => {
    pendingScan = undefined
    return readLiveGroups()
  })
  return pendingScan
}

/**
 * Whether a Linux process group has a member that is not a zombie. A group can outlive its
 * processes as zombies when they were orphaned under an init that does not reap (common in
 * containers, and where the host itself is pid 1); such a group is gone for our purposes.
 */
const groupHasLiveMemberLinux = async (pgid: number): Promise<boolean> => {
  // Cheap first look: the leader itself, running, is enough.
  const leader = readStat(String(pgid))
  if (leader !== undefined && leader.pgid === pgid && leader.state !== "Z") return true
  return (await groupsWithLiveMembers()).has(pgid)
}

/** Whether any process of the group still runs. */
const groupAlive = async (pgid: number): Promise<boolean> => {
  if (!signalGroup(pgid, 0)) return false
  if (isLinux) return groupHasLiveMemberLinux(pgid)
  return true
}

/** Whether `promise` settles within `ms`; the timer is cleared either way. */
const settlesWithin = (promise: Promise<unknown>, ms: number): Promise<boolean> =>
  new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms)
    void promise.then(() => {
      clearTimeout(timer)
      resolve(true)
    })
  })

/** What Node tells us about the group we started, so that its end is awaited, not polled for. */
export interface GroupEvents {
  /** Settles when the leader (our child) has exited and been reaped. */
  readonly leaderExited: Promise<unknown>
  /**
   * Settles when the leader has exited and its stdout and stderr pipes are closed: every
   * process that held them (wrappers' children, grandchildren) has exited too.
   */
  readonly pipesClosed: Promise<unknown>
}

/**
 * Waits until the group is gone; true if it went within `timeoutMs`. While the leader runs,
 * the group is alive: its exit is awaited. Its descendants (a server behind `sh -c` or `npx`)
 * share its stdio pipes, so the pipes' close says when they have exited: then one
 * `kill(-pgid, 0)` usually finds the group empty, or one pass over `/proc` (shared by the
 * groups closing at the same time) finds only zombies that nobody reaps. A group whose members
 * outlive the pipes, or left them, is polled, cheaply (`kill`) and with the process table read
 * seldom.
 */
const waitGroupGone = async (pgid: number, timeoutMs: number, events?: GroupEvents): Promise<boolean> => {
  const deadline = Date.now() + timeoutMs
  if (events !== undefined && !(await settlesWithin(events.leaderExited, timeoutMs))) {
    return !(await groupAlive(pgid))
  }
  let pipesClosed = events === undefined
  // While the pipes are open, a member holds them: the process table is read seldom. Once they
  // close, it is read at once, then after 1, 2, 4 ... ms (a member that has just closed its
  // files is a moment away from being a zombie), and seldom again.
  let scanDelay = pipesClosed ? FIRST_POLL_MS : SLOW_SCAN_MS
  let scanAt = pipesClosed ? 0 : Date.now() + SLOW_SCAN_MS
  const closed = events?.pipesClosed.then(() => {
    pipesClosed = true
    scanAt = 0
    scanDelay = FIRST_POLL_MS
  })
  let delay = FIRST_POLL_MS
  for (;;) {
    if (!signalGroup(pgid, 0)) return true
    // Something of the group is in the process table: a member still running, or a zombie.
    if (isLinux && Date.now() >= scanAt) {
      if (!(await groupHasLiveMemberLinux(pgid))) return true
      scanAt = Date.now() + scanDelay
      scanDelay = Math.min(scanDelay * 2, SLOW_SCAN_MS)
    }
    const left = deadline - Date.now()
    if (left <= 0) return false
    const wait = Math.min(delay, left)
    if (pipesClosed || closed === undefined) await sleep(wait)
    else await settlesWithin(closed, wait)
    delay = Math.min(delay * 2, MAX_POLL_MS)
  }
}

/**
 * Ends a process group: SIGTERM to all of it, up to `graceMs` for it to go, then SIGKILL and a
 * short wait. Resolves once no process of the group runs; rejects if it survives SIGKILL.
 * Without `events` (a group that is not our child's), it is polled.
 */
export const killProcessGroup = async (pgid: number, graceMs: number, events?: GroupEvents): Promise<void> => {
  if (signalGroup(pgid, "SIGTERM") && !(await waitGroupGone(pgid, graceMs, events))) {
    if (signalGroup(pgid, "SIGKILL") && !(await waitGroupGone(pgid, AFTER_SIGKILL_WAIT_MS, events))) {
      throw new Error(`process group ${pgid} still runs ${AFTER_SIGKILL_WAIT_MS} ms after SIGKILL`)
    }
  }
  unregisterGroup(pgid)
}

// ---------------------------------------------------------------------------------------------
// The transport
// ---------------------------------------------------------------------------------------------

type State = "new" | "starting" | "open" | "closing" | "closed"

const describeExit = (exit: ProcessExit): string =>
  exit.signal !== null ? `was killed by ${exit.signal}` : `exited with code ${String(exit.code)}`

/**
 * An MCP client `Transport` over the stdio of a server process that leads its own process group,
 * so that `close()`, the server's death or the host's `exit` event ends every process it started
 * (SIGINT/SIGTERM to the host are not handled here: the application must turn them into an exit
 * or a `close()`).
 */
export class ProcessGroupStdioTransport implements Transport {
  /** Called when the transport has closed, whatever the reason; exactly once. */
  onclose?: (() => void) | undefined
  /** Called for out-of-band errors: unparsable output, broken pipes, an unexpected exit. */
  onerror?: ((error: Error) => void) | undefined
  /** Called for each JSON-RPC message the server writes. */
  onmessage?: Transport["onmessage"]
  /** Called as soon as the server process has exited, before the rest of its group is ended. */
  onexit?: ((exit: ProcessExit) => void) | undefined

  /** Resolves when the server process has exited (both fields null if it never spawned); never rejects. */
  readonly exited: Promise<ProcessExit>

  private readonly options: ProcessGroupStdioTransportOptions
  private readonly readBuffer = new ReadBuffer()
  private readonly resolveExited: (exit: ProcessExit) => void
  /** Settles once the server has exited and its stdout and stderr are closed (Node's `close`). */
  private pipesClosed: Promise<void> = Promise.resolve()
  private child: ChildProcessWithoutNullStreams | undefined
  private state: State = "new"
  /** Settles (never rejects) once start() has succeeded or failed. */
  private startSettled: Promise<void> | undefined
  private teardown: Promise<Error | undefined> | undefined
  private closeNotified = false
  /** Messages sent in this tick and not yet written (see send), and their promises' settlers. */
  private outbox: Array<string> = []
  private outboxSettlers: Array<Settler> = []
  private stderrPartial = ""

  constructor(options: ProcessGroupStdioTransportOptions) {
    this.options = options
    let resolveExited: ((exit: ProcessExit) => void) | undefined
    this.exited = new Promise<ProcessExit>((resolve) => {
      resolveExited = resolve
    })
    this.resolveExited = (exit) => resolveExited?.(exit)
  }

  /** The pid of the server process, which is also its process group id; undefined before it spawned. */
  get pid(): number | undefined {
    return this.child?.pid
  }

  /** Spawns the server in a new process group; rejects, naming the command, if it cannot be spawned. */
  start(): Promise<void> {
    if (this.state !== "new") {
      return Promise.reject(new Error("ProcessGroupStdioTransport already started (Client.connect starts it)"))
    }
    this.state = "starting"
    const { command, args = [], cwd } = this.options
    let settleStart: (() => void) | undefined
    this.startSettled = new Promise<void>((resolve) => {
      settleStart = resolve
    })
    return new Promise<void>((resolve, reject) => {
      const fail = (cause: unknown): void => {
        settleStart?.()
        this.state = "closed"
        this.resolveExited({ code: null, signal: null })
        reject(new Error(`could not start MCP server command "${command}": ${asError(cause).message}`, { cause }))
      }
      let child: ChildProcessWithoutNullStreams
      try {
        child = spawn(command, [...args], {
          detached: true,
          stdio: ["pipe", "pipe", "pipe"],
          env: { ...getDefaultEnvironment(), ...this.options.env },
          ...(cwd === undefined ? {} : { cwd }),
          windowsHide: true
        })
      } catch (error) {
        fail(error)
        return
      }
      this.child = child
      this.pipesClosed = new Promise<void>((closed) => child.once("close", () => closed()))
      child.once("spawn", () => {
        const pid = child.pid
        if (pid === undefined) {
          child.kill("SIGKILL")
          fail(new Error("no pid after spawn"))
          return
        }
        registerGroup(pid)
        this.state = "open"
        settleStart?.()
        resolve()
      })
      child.on("error", (error) => {
        if (this.state === "starting") {
          // Failed to spawn (ENOENT, EACCES...): nothing runs, nothing to end.
          child.stdin.destroy()
          child.stdout.destroy()
          child.stderr.destroy()
          fail(error)
          return
        }
        this.reportError(error)
      })
      child.on("exit", (code, signal) => this.handleExit({ code, signal }))

      child.stdout.on("data", (chunk: Buffer) => this.handleStdout(chunk))
      child.stdout.on("error", (error) => this.handlePipeError("stdout", error))
      child.stdin.on("error", (error) => this.handlePipeError("stdin", error))
      child.stderr.setEncoding("utf8")
      child.stderr.on("data", (text: string) => this.handleStderr(text))
      child.stderr.on("end", () => this.flushStderr())
      child.stderr.on("error", (error) => this.handlePipeError("stderr", error))
    })
  }

  /**
   * Queues one message for the server's stdin; resolves once written (and drained, under
   * backpressure), rejects with {@link SendFailed} if it could not be.
   *
   * The messages sent in one tick go out in one write at its end: a burst of requests (100
   * callers answered by one read of stdout, each sending its next request) costs the server
   * one read and us one system call rather than one per message. Order is kept.
   */
  send(message: JSONRPCMessage): Promise<void> {
    // Failures reject with SendFailed themselves (no wrapper promise per message): the
    // request never reached the server.
    if (this.state !== "open" || this.child?.stdin.writable !== true) {
      return Promise.reject(new SendFailed(new Error("Not connected")))
    }
    const json = serializeMessage(message)
    return new Promise<void>((resolve, reject) => {
      if (this.outbox.length === 0) process.nextTick(this.flushOutbox)
      this.outbox.push(json)
      this.outboxSettlers.push({ resolve, reject })
    })
  }

  /** Writes the messages queued by `send` in this tick as one chunk. */
  private readonly flushOutbox = (): void => {
    const chunks = this.outbox
    const settlers = this.outboxSettlers
    this.outbox = []
    this.outboxSettlers = []
    const stdin = this.child?.stdin
    if (this.state !== "open" || stdin === undefined || !stdin.writable) {
      const failure = new SendFailed(new Error("Not connected"))
      for (const settler of settlers) settler.reject(failure)
      return
    }
    // The write callback fires once the chunk is flushed (later, under backpressure) or with
    // the error that destroyed the pipe. One callback per chunk, no listener per pending
    // write: a burst on one server must not trip Node's MaxListenersExceededWarning.
    stdin.write(chunks.join(""), (error) => {
      if (error === null || error === undefined) {
        for (const settler of settlers) settler.resolve()
        return
      }
      const failure = new SendFailed(error)
      for (const settler of settlers) settler.reject(failure)
    })
  }

  /**
   * Ends stdin, SIGTERMs the whole process group, waits for it to go (SIGKILL after the grace
   * period) and calls `onclose`. Idempotent; rejects only if the group survived SIGKILL.
   */
  async close(): Promise<void> {
    if (this.state === "new" || this.state === "closed") {
      this.state = "closed"
      this.notifyClose()
      return
    }
    const error = await this.beginTeardown()
    if (error !== undefined) throw error
  }

  private beginTeardown(): Promise<Error | undefined> {
    this.teardown ??= this.runTeardown()
    return this.teardown
  }

  private async runTeardown(): Promise<Error | undefined> {
    // A start() still under way finishes first, so that there is a pid to end.
    await this.startSettled
    const child = this.child
    const pgid = child?.pid
    if (this.state === "closed" || child === undefined || pgid === undefined) {
      this.state = "closed"
      this.notifyClose()
      return undefined
    }
    this.state = "closing"
    if (!child.stdin.destroyed && !child.stdin.writableEnded) child.stdin.end()
    const grace = this.options.killGracePeriodMs ?? DEFAULT_KILL_GRACE_PERIOD_MS
    let failure: Error | undefined
    try {
      await killProcessGroup(pgid, grace, { leaderExited: this.exited, pipesClosed: this.pipesClosed })
    } catch (error) {
      failure = asError(error)
    }
    if (failure === undefined) await this.waitStdoutClosed(child)
    child.stdin.destroy()
    child.stdout.destroy()
    child.stderr.destroy()
    this.flushStderr()
    this.readBuffer.clear()
    this.state = "closed"
    this.notifyClose()
    return failure
  }

  private waitStdoutClosed(child: ChildProcessWithoutNullStreams): Promise<void> {
    if (child.stdout.closed) return Promise.resolve()
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, STDOUT_DRAIN_WAIT_MS)
      function done(): void {
        clearTimeout(timer)
        child.stdout.off("close", done)
        resolve()
      }
      child.stdout.on("close", done)
    })
  }

  private notifyClose(): void {
    if (this.closeNotified) return
    this.closeNotified = true
    this.onclose?.()
  }

  private reportError(error: Error): void {
    this.onerror?.(error)
  }

  private handleExit(exit: ProcessExit): void {
    this.resolveExited(exit)
    this.onexit?.(exit)
    // When we are ending the server ourselves (close(), or after a failure already reported),
    // its exit is what we asked for.
    if (this.state !== "open") return
    this.reportError(
      new Error(`MCP server process "${this.options.command}" (pid ${String(this.pid)}) ${describeExit(exit)}`)
    )
    void this.endAfterFailure()
  }

  private handlePipeError(pipe: "stdin" | "stdout" | "stderr", error: Error): void {
    // Once the server is being ended (by close() or after a failure already reported), broken
    // pipes are the expected consequence of that, not news.
    if (this.state !== "open") return
    this.reportError(
      new Error(`the ${pipe} pipe of MCP server "${this.options.command}" failed: ${error.message}`, { cause: error })
    )
    if (this.state === "open") void this.endAfterFailure()
  }

  /** Ends whatever remains of the group after a failure; the outcome goes to `onerror`. */
  private async endAfterFailure(): Promise<void> {
    const error = await this.beginTeardown()
    if (error !== undefined) this.reportError(error)
  }

  private handleStdout(chunk: Buffer): void {
    try {
      this.readBuffer.append(chunk)
    } catch (error) {
      // The buffer overflowed (a line over the SDK's maximum): the stream cannot be resynchronised.
      this.reportError(asError(error))
      if (this.state === "open") void this.endAfterFailure()
      return
    }
    for (;;) {
      let message: JSONRPCMessage | null
      try {
        message = this.readBuffer.readMessage()
      } catch (error) {
        // One unparsable line; it has been consumed, the following ones may be fine.
        this.reportError(asError(error))
        continue
      }
      if (message === null) return
      if (this.state === "closed") return
      try {
        this.onmessage?.(message)
      } catch (error) {
        this.reportError(asError(error))
      }
    }
  }

  private handleStderr(text: string): void {
    const lines = (this.stderrPartial + text).split("\n")
    this.stderrPartial = lines.pop() ?? ""
    for (const line of lines) this.emitStderr(line)
    if (this.stderrPartial.length > MAX_STDERR_LINE) {
      this.emitStderr(this.stderrPartial)
      this.stderrPartial = ""
    }
  }

  private flushStderr(): void {
    if (this.stderrPartial.length === 0) return
    const rest = this.stderrPartial
    this.stderrPartial = ""
    this.emitStderr(rest)
  }

  private emitStderr(line: string): void {
    const handler = this.options.onStderr
    if (handler === undefined) return
    try {
      handler(line.endsWith("\r") ? line.slice(0, -1) : line)
    } catch (error) {
      this.reportError(asError(error))
    }
  }
}
