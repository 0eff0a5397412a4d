/**
 * Serial mode (`FixtureServerOptions.serial`): the server handles one request at a time, in arrival
 * order, as many single-threaded servers do (head-of-line blocking), by queueing around every request
 * handler. Notifications (a cancellation among them) and the client's answers are not queued.
 */
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js"
import { aroundRequests } from "./sdk.js"

/**
 * Where requests wait their turn in serial mode (see `createRequestQueue`). Servers given the same
 * queue handle their requests one at a time between them.
 */
export interface RequestQueue {
  /**
   * Runs `handle` once every request queued before it has been handled (and its answer handed to its
   * transport), and settles as it does. If `signal` aborts while it waits, it leaves the queue and
   * rejects with the abort reason without running `handle`.
   */
  run<A>(signal: AbortSignal | undefined, handle: () => Promise<A>): Promise<A>
}

interface Waiting {
  readonly start: () => void
}

class Queue implements RequestQueue {
  #busy = false
  readonly #waiting: Array<Waiting> = []

  async run<A>(signal: AbortSignal | undefined, handle: () => Promise<A>): Promise<A> {
    await this.#turn(signal)
    try {
      return await handle()
    } finally {
      this.#next()
    }
  }

  #turn(signal: AbortSignal | undefined): Promise<void> {
    if (signal?.aborted === true) return Promise.reject(signal.reason)
    if (!this.#busy) {
      this.#busy = true
      return Promise.resolve()
    }
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        const index = this.#waiting.indexOf(waiting)
        if (index !== -1) this.#waiting.splice(index, 1)
        reject(signal?.reason)
      }
      const waiting: Waiting = {
        start: () => {
          signal?.removeEventListener("abort", onAbort)
          resolve()
        }
      }
      this.#waiting.push(waiting)
      signal?.addEventListener("abort", onAbort, { once: true })
    })
  }

  /**
   * Starts the next request waiting, if any, on the next turn of the event loop: `Protocol` hands the
   * answer of the request that just settled to its transport a few microtasks after its handler settled.
   */
  #next(): void {
    setImmediate(() => {
      const next = this.#waiting.shift()
      if (next === undefined) this.#busy = false
      else next.start()
    })
  }
}

/** A new, empty queue for serial mode, to give the servers that share it (`FixtureServerOptions.requestQueue`). */
export const createRequestQueue = (): RequestQueue => new Queue()

const signalOf = (extra: unknown): AbortSignal | undefined => {
  if (typeof extra !== "object" || extra === null || !("signal" in extra)) return undefined
  const { signal } = extra
  return signal instanceof AbortSignal ? signal : undefined
}

/**
 * Makes every request `mcp` receives (methods without a handler included) wait its turn in `queue`.
 * Call it after the code that reads a handler to wrap it (which would wait twice: forever).
 */
export const handleOneAtATime = (mcp: McpServer, queue: RequestQueue): void => {
  aroundRequests(mcp, (_method, extra, handle) => queue.run(signalOf(extra), handle))
}
