/**
 * A stdio MCP client transport that runs the server in its own process group and ends the whole
 * group (wrappers such as `npx` or `sh -c`, their children, and what left the group) on close.
 */
import type { ChildProcessWithoutNullStreams } from "node:child_process"
import { ReadBuffer, serializeMessage } from "@modelcontextprotocol/sdk/shared/stdio.js"
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js"
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js"
import { collectProcessTree, endProcessTree, registerGroup } from "./processGroup.js"
import { StderrLines } from "./stderrLines.js"
import {
  describeExit,
  type ProcessExit,
  type ProcessGroupStdioTransportOptions,
  spawnGroupLeader
} from "./stdioProcess.js"
import { SendFailed, StdinWriter } from "./stdinWriter.js"

export { type GroupEvents, killProcessGroup } from "./processGroup.js"
export { SendFailed }
export type { ProcessExit, ProcessGroupStdioTransportOptions } from "./stdioProcess.js"

const DEFAULT_KILL_GRACE_PERIOD_MS = 2_000
/** How long to wait, once the group is gone, for the last buffered stdout bytes. */
const STDOUT_DRAIN_WAIT_MS = 100

const asError = (value: unknown): Error => (value instanceof Error ? value : new Error(String(value)))

type State = "new" | "starting" | "open" | "closing" | "closed"

/**
 * An MCP client `Transport` over the stdio of a server process that leads its own process group,
 * so that `close()`, the server's death or the host's `exit` event ends every process it started,
 * also those that left the group (SIGINT/SIGTERM to the host are not handled here: the
 * application must turn them into an exit or a `close()`).
 *
 * A failure of the server (it exits, closes its stdout, or a pipe breaks) is reported to
 * `onerror` and calls `onclose` at once, so that the client fails the requests in flight; the
 * group is ended behind it, and `close()` waits for that.
 */
export class ProcessGroupStdioTransport implements Transport {
  /** Called when the transport has closed, whatever the reason; exactly once. */
  onclose?: (() => void) | undefined
  /** Called for out-of-band errors: unparsable output, broken pipes, a closed stdout, an unexpected exit. */
  onerror?: ((error: Error) => void) | undefined
  /** Called for each JSON-RPC message the server writes. */
  onmessage?: Transport["onmessage"]
  /** Called as soon as the server process has exited, before the rest of its group is ended. */
  onexit?: ((exit: ProcessExit) => void) | undefined

  /** Resolves when the server process has exited (both fields null if it never spawned); never rejects. */
  readonly exited: Promise<ProcessExit>

  private readonly options: ProcessGroupStdioTransportOptions
  private readonly readBuffer = new ReadBuffer()
  private readonly stderr = new StderrLines((line) => this.emitStderr(line))
  private readonly resolveExited: (exit: ProcessExit) => void
  private exit: ProcessExit | undefined
  /** Settles once the server has exited and its stdout and stderr are closed (Node's `close`). */
  private pipesClosed: Promise<void> = Promise.resolve()
  private child: ChildProcessWithoutNullStreams | undefined
  private state: State = "new"
  /** Settles (never rejects) once start() has succeeded or failed. */
  private startSettled: Promise<void> | undefined
  private teardown: Promise<Error | undefined> | undefined
  /** Why the transport is being ended: asked to by `close()`, or after a failure of the server. */
  private ending: "close" | "failure" | undefined
  /** The signals sent to the group: an exit by one of them (or by code, after one) is our doing. */
  private readonly signalsSent = new Set<NodeJS.Signals>()
  private closeNotified = false
  private readonly writer = new StdinWriter(() => this.writableStdin())

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

  /**
   * How the server process ended, once it has (both fields null if it never spawned); undefined
   * while it runs. The synchronous view of {@link exited}.
   */
  get exitStatus(): ProcessExit | undefined {
    return this.exit
  }

  /**
   * The last lines the server wrote to stderr, oldest first, whether or not `onStderr` is set:
   * at most 20 lines and 4,096 characters in all, each line cut to 1,024 characters (ending
   * in `…` where it was cut).
   */
  stderrTail(): ReadonlyArray<string> {
    return this.stderr.tail()
  }

  /** Spawns the server in a new process group; rejects, naming the command, if it cannot be spawned. */
  start(): Promise<void> {
    if (this.state !== "new") {
      return Promise.reject(new Error("ProcessGroupStdioTransport already started (Client.connect starts it)"))
    }
    this.state = "starting"
    let settleStart: (() => void) | undefined
    this.startSettled = new Promise<void>((resolve) => {
      settleStart = resolve
    })
    return new Promise<void>((resolve, reject) => {
      const fail = (cause: unknown): void => {
        settleStart?.()
        this.state = "closed"
        this.recordExit({ code: null, signal: null })
        const message = `could not start MCP server command "${this.options.command}": ${asError(cause).message}`
        reject(new Error(message, { cause }))
      }
      const child = this.spawnChild(fail)
      if (child === undefined) return
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
        if (this.state !== "starting") {
          this.reportError(error)
          return
        }
        // Failed to spawn (ENOENT, EACCES...): nothing runs, nothing to end.
        child.stdin.destroy()
        child.stdout.destroy()
        child.stderr.destroy()
        fail(error)
      })
    })
  }

  /** Spawns the server as the leader of a new process group and listens to it; undefined if spawn threw. */
  private spawnChild(fail: (cause: unknown) => void): ChildProcessWithoutNullStreams | undefined {
    let child: ChildProcessWithoutNullStreams
    try {
      child = spawnGroupLeader(this.options)
    } catch (error) {
      fail(error)
      return undefined
    }
    this.child = child
    this.pipesClosed = new Promise<void>((closed) => child.once("close", () => closed()))
    child.on("exit", (code, signal) => this.handleExit({ code, signal }))
    child.stdout.on("data", (chunk: Buffer) => this.handleStdout(chunk))
    child.stdout.on("end", () => this.handlePipeClosed("stdout"))
    child.stdout.on("close", () => this.handlePipeClosed("stdout"))
    child.stdout.on("error", (error) => this.handlePipeError("stdout", error))
    child.stdin.on("close", () => this.handlePipeClosed("stdin"))
    child.stdin.on("error", (error) => this.handlePipeError("stdin", error))
    child.stderr.setEncoding("utf8")
    child.stderr.on("data", (text: string) => this.stderr.push(text))
    child.stderr.on("end", () => this.stderr.flush())
    child.stderr.on("error", (error) => this.handlePipeError("stderr", error))
    return child
  }

  /**
   * Queues one message for the server's stdin; resolves once written (and drained, under
   * backpressure), rejects with {@link SendFailed} if it could not be. The messages sent in one
   * tick go out in one write at its end, in order (see `StdinWriter`).
   */
  send(message: JSONRPCMessage): Promise<void> {
    // Failures reject with SendFailed themselves (no wrapper promise per message): the
    // request never reached the server.
    if (this.writableStdin() === undefined) return Promise.reject(new SendFailed(new Error("Not connected")))
    return this.writer.write(serializeMessage(message))
  }

  /** The server's stdin while messages may be written to it. */
  private writableStdin(): ChildProcessWithoutNullStreams["stdin"] | undefined {
    const stdin = this.child?.stdin
    return this.state === "open" && stdin?.writable === true ? stdin : undefined
  }

  /**
   * Ends stdin, SIGTERMs the whole process group and the descendants that left it, waits for
   * them to go (SIGKILL after the grace period) and calls `onclose`. Idempotent; rejects only if
   * something survived SIGKILL.
   */
  async close(): Promise<void> {
    if (this.state === "new" || this.state === "closed") {
      this.state = "closed"
      this.notifyClose()
      return
    }
    this.ending ??= "close"
    const error = await this.beginTeardown()
    if (error !== undefined) throw error
  }

  /** Starts ending the server, once; every caller gets the same outcome. */
  private beginTeardown(): Promise<Error | undefined> {
    // From now on, what happens to the server is the consequence of ending it, not news.
    if (this.state === "open") this.state = "closing"
    this.teardown ??= this.runTeardown()
    return this.teardown
  }

  /** Ends stdin and the group, releases the pipes and calls `onclose`; the error if something survived. */
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
    const failure = await this.endGroup(child, pgid)
    if (failure === undefined) await this.waitStdoutClosed(child)
    child.stdin.destroy()
    child.stdout.destroy()
    child.stderr.destroy()
    this.stderr.flush()
    this.readBuffer.clear()
    this.state = "closed"
    this.notifyClose()
    return failure
  }

  /** Ends stdin, the group and the descendants that left it; the error if something survived. */
  private async endGroup(child: ChildProcessWithoutNullStreams, pgid: number): Promise<Error | undefined> {
    const grace = this.options.killGracePeriodMs ?? DEFAULT_KILL_GRACE_PERIOD_MS
    const onSignal = (signal: NodeJS.Signals): void => {
      this.signalsSent.add(signal)
    }
    try {
      // Collected first, while the server (their parent) runs; then the end of stdin and
      // SIGTERM follow in one tick, as they always have.
      const tree = await collectProcessTree(pgid)
      if (!child.stdin.destroyed && !child.stdin.writableEnded) child.stdin.end()
      await endProcessTree(tree, grace, { leaderExited: this.exited, pipesClosed: this.pipesClosed, onSignal })
      return undefined
    } catch (error) {
      return asError(error)
    }
  }

  /** Waits, briefly, for the last bytes of stdout once the group is gone. */
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

  /** Calls `onclose`, once. */
  private notifyClose(): void {
    if (this.closeNotified) return
    this.closeNotified = true
    this.onclose?.()
  }

  /** Hands an error to `onerror`. */
  private reportError(error: Error): void {
    this.onerror?.(error)
  }

  /**
   * Reports a failure of the server and, if the transport was open, ends it: `onclose` at
   * once (the connection is dead), then the group is ended; the outcome goes to `onerror`.
   */
  private fail(error: Error): void {
    this.reportError(error)
    if (this.state !== "open") return
    this.ending = "failure"
    const teardown = this.beginTeardown()
    this.notifyClose()
    void teardown.then((failure) => {
      if (failure !== undefined) this.reportError(failure)
    })
  }

  /** Keeps how the server ended and settles `exited`. */
  private recordExit(exit: ProcessExit): void {
    this.exit = exit
    this.resolveExited(exit)
  }

  /** The server exited: news, unless we are closing it or our signals caused it. */
  private handleExit(exit: ProcessExit): void {
    this.recordExit(exit)
    this.onexit?.(exit)
    if (this.ending === "close" || this.causedByUs(exit)) return
    this.fail(new Error(`MCP server process "${this.options.command}" (pid ${String(this.pid)}) ${describeExit(exit)}`))
  }

  /**
   * Whether an exit during the teardown after a failure is what our signals asked for: death by
   * a signal we sent. An exit code is always reported, also one that follows our SIGTERM (a
   * server that exits on its own with code 3 may close its stdout just before, so that the
   * teardown has begun by the time its exit is seen), and so is a death by another signal.
   */
  private causedByUs(exit: ProcessExit): boolean {
    return exit.signal !== null && this.signalsSent.has(exit.signal)
  }

  /** A pipe that closes while the transport is open: the server can no longer be talked to. */
  private handlePipeClosed(pipe: "stdin" | "stdout"): void {
    if (this.state !== "open") return
    const server = `MCP server "${this.options.command}" (pid ${String(this.pid)})`
    this.fail(new Error(pipe === "stdout" ? `${server} closed its stdout` : `the stdin pipe of ${server} closed`))
  }

  /** A pipe that fails while the transport is open: a failure of the server. */
  private handlePipeError(pipe: "stdin" | "stdout" | "stderr", error: Error): void {
    // Once the server is being ended (by close() or after a failure already reported), broken
    // pipes are the expected consequence of that, not news.
    if (this.state !== "open") return
    const server = `MCP server "${this.options.command}" (pid ${String(this.pid)})`
    this.fail(new Error(`the ${pipe} pipe of ${server} failed: ${error.message}`, { cause: error }))
  }

  /** Reads the JSON-RPC messages in a chunk of stdout and hands them to `onmessage`. */
  private handleStdout(chunk: Buffer): void {
    try {
      this.readBuffer.append(chunk)
    } catch (error) {
      // The buffer overflowed (a line over the SDK's maximum): the stream cannot be resynchronised.
      this.fail(asError(error))
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
      // Once onclose has been called, the client has failed its requests: late answers are dropped.
      if (message === null || this.closeNotified) return
      try {
        this.onmessage?.(message)
      } catch (error) {
        this.reportError(asError(error))
      }
    }
  }

  /** Hands one stderr line to `onStderr`; what it throws goes to `onerror`. */
  private emitStderr(line: string): void {
    const handler = this.options.onStderr
    if (handler === undefined) return
    try {
      handler(line)
    } catch (error) {
      this.reportError(asError(error))
    }
  }
}
