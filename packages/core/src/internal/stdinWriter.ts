/**
 * Writing JSON-RPC messages to a server's stdin: the messages sent in one tick go out as one
 * write at its end, and each message's promise says whether it was handed to the server.
 */
import type { Writable } from "node:stream"

/**
 * A transport's `send` rejected: the message was not handed to the server as far as we know.
 * (Defined here, not in classify, so that the transport imports nothing of the library.)
 */
export class SendFailed extends Error {
  override readonly cause: unknown
  constructor(cause: unknown) {
    const code = cause instanceof Error && "code" in cause && typeof cause.code === "string" ? ` (${cause.code})` : ""
    super(`send failed: ${cause instanceof Error ? cause.message : String(cause)}${code}`)
    this.cause = cause
  }
}

/** Settles the promise `write` returned for one message. */
interface Settler {
  readonly resolve: () => void
  readonly reject: (error: SendFailed) => void
}

/**
 * Queues serialized messages and writes those of one tick as one chunk, in order, at the tick's
 * end. A burst of requests (100 callers answered by one read of stdout, each sending its next
 * request) costs the server one read and us one system call rather than one per message.
 */
export class StdinWriter {
  private chunks: Array<string> = []
  private settlers: Array<Settler> = []
  private readonly stdin: () => Writable | undefined

  /** `stdin` gives the pipe to write to, or undefined once the server can no longer be written to. */
  constructor(stdin: () => Writable | undefined) {
    this.stdin = stdin
  }

  /**
   * Queues one serialized message; resolves once it is written (and drained, under
   * backpressure), rejects with {@link SendFailed} if it could not be.
   */
  write(json: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.chunks.length === 0) process.nextTick(this.flush)
      this.chunks.push(json)
      this.settlers.push({ resolve, reject })
    })
  }

  /** Writes the messages queued in this tick as one chunk. */
  private readonly flush = (): void => {
    const chunks = this.chunks
    const settlers = this.settlers
    this.chunks = []
    this.settlers = []
    const stdin = this.stdin()
    if (stdin === undefined) {
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
}
