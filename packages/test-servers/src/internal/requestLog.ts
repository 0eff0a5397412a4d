/**
 * What one fixture server instance has been asked (`requests_seen`): a count per request method, the
 * requests being handled now and the cancellations received, seen by wrapping the SDK's handlers.
 */
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js"
import { CancelledNotificationSchema, RootsListChangedNotificationSchema } from "@modelcontextprotocol/sdk/types.js"
import type { RequestId } from "@modelcontextprotocol/sdk/types.js"
import { json } from "./results.js"
import { aroundRequests, notificationHandler } from "./sdk.js"

/** A `notifications/cancelled` the server received. */
export interface CancelledRequest {
  /** The id of the request the client cancelled. */
  readonly requestId: RequestId
  /** The reason the client gave, if any. */
  readonly reason?: string
}

/** What the `requests_seen` tool answers (as JSON text and as structuredContent). */
export interface RequestsSeen {
  /** How many requests of each JSON-RPC method this instance received, unknown methods included. */
  readonly methods: Record<string, number>
  /** The ids of the requests being handled now, the `requests_seen` call itself left out. */
  readonly inFlight: ReadonlyArray<RequestId>
  /** The cancellations received, in order (ids of requests already answered included). */
  readonly cancelled: ReadonlyArray<CancelledRequest>
  /** How many `notifications/roots/list_changed` this instance received. */
  readonly rootsChanged: number
}

interface RequestLog {
  readonly methods: Map<string, number>
  readonly inFlight: Set<RequestId>
  readonly cancelled: Array<CancelledRequest>
  rootsChanged: number
}

const requestIdOf = (extra: unknown): RequestId | undefined => {
  if (typeof extra !== "object" || extra === null || !("requestId" in extra)) return undefined
  const { requestId } = extra
  return typeof requestId === "string" || typeof requestId === "number" ? requestId : undefined
}

/** Runs `handle` counted under `method`, with the request in flight until it settles. */
const track = async <A>(log: RequestLog, method: string, extra: unknown, handle: () => Promise<A>): Promise<A> => {
  log.methods.set(method, (log.methods.get(method) ?? 0) + 1)
  const id = requestIdOf(extra)
  if (id !== undefined) log.inFlight.add(id)
  try {
    return await handle()
  } finally {
    if (id !== undefined) log.inFlight.delete(id)
  }
}

/**
 * Starts recording the requests `mcp` receives and the cancellations, and registers `requests_seen`,
 * which answers from that record. Call it last: code that reads a handler to wrap it afterwards (as
 * `answerFailWithJsonRpcError` does) would have that method counted twice. A request is recorded as it
 * arrives, outside serial mode's queue (set up before this): one waiting its turn is in flight. The
 * cancelled notification still goes to `Protocol`'s own handler, which aborts the request.
 */
export const registerRequestsSeen = (mcp: McpServer): void => {
  const log: RequestLog = { methods: new Map(), inFlight: new Set(), cancelled: [], rootsChanged: 0 }
  // Every request, methods without a handler included (still answered -32601 Method not found).
  aroundRequests(mcp, (method, extra, handle) => track(log, method, extra, handle))

  const cancel = notificationHandler(mcp, "notifications/cancelled")
  mcp.server.setNotificationHandler(CancelledNotificationSchema, async (notification) => {
    const { requestId, reason } = notification.params
    if (requestId !== undefined) log.cancelled.push(reason === undefined ? { requestId } : { requestId, reason })
    await cancel(notification)
  })
  mcp.server.setNotificationHandler(RootsListChangedNotificationSchema, () => {
    log.rootsChanged++
  })

  mcp.registerTool(
    "requests_seen",
    {
      description:
        "Returns {methods, inFlight, cancelled, rootsChanged}: requests per method, ids in flight (not this one), cancellations and roots/list_changed notifications received."
    },
    (extra) => {
      const seen: RequestsSeen = {
        methods: Object.fromEntries(log.methods),
        inFlight: [...log.inFlight].filter((id) => id !== extra.requestId),
        cancelled: [...log.cancelled],
        rootsChanged: log.rootsChanged
      }
      return json({ ...seen })
    }
  )
}
