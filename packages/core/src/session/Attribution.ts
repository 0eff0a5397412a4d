/**
 * Which call a server's request was made for, on one connection: the rule of
 * docs/protocol.md. Over Streamable HTTP a request the server sends on the response stream of
 * a call's POST belongs to that call, and nothing else does; over stdio and SSE, where all
 * messages share one stream, a request belongs to a call when that call is the only thing the
 * connection is doing.
 */
import type { RequestId } from "@modelcontextprotocol/sdk/types.js"
import { isJSONRPCRequest } from "@modelcontextprotocol/sdk/types.js"
import type * as ServerRequests from "../ServerRequests.js"

/** What a server request's handler needs to know of the call it was attributed to. */
export interface CallInfo {
  readonly method: string
  readonly target?: string | undefined
  /** The call's own handlers, which answer before the server's. */
  readonly handlers?: ServerRequests.Handlers | undefined
  /** How long the call may take, from `sentAt`: a handler answering for it must answer sooner. */
  readonly timeoutMs: number
  /** `performance.now()` when the call was sent (when the SDK started its timer). */
  readonly sentAt: number
}

/**
 * How long a handler answering for `call` may take: the time the call has left, less a margin
 * (a tenth of its timeout, at most a second) for the server to get the handler's failure and
 * answer the call before the call's own timeout ends it.
 */
export const handlerBudget = (call: CallInfo, now: number): number => {
  const left = call.timeoutMs - (now - call.sentAt)
  return Math.max(0, Math.floor(left - Math.min(1000, call.timeoutMs / 10)))
}

/** One attempt of a call on this connection, with the JSON-RPC ids it sent. */
export interface Attempt {
  readonly call: CallInfo
  readonly ids: Array<RequestId>
}

/** The bookkeeping of one connection's calls, for attributing the server's requests. */
export class Attribution {
  private readonly calls = new Set<Attempt>()
  private readonly byId = new Map<RequestId, Attempt>()
  /** The server's request id → the id of our request on whose response stream it came. */
  private readonly relatedTo = new Map<RequestId, RequestId>()
  /** The attempt whose request is being sent now (synchronously): its ids are recorded. */
  private sending: Attempt | undefined = undefined
  /** How many borrowers hold the connection now (set by its pool; a one-off connection has one). */
  holders: () => number = () => this.calls.size

  /** `exact`: the transport tells which request each server request belongs to (Streamable HTTP). */
  constructor(readonly exact: boolean) {}

  /** A call starts sending on this connection: what it sends until {@link sent} is its own. */
  begin(call: CallInfo): Attempt {
    const attempt: Attempt = { call, ids: [] }
    this.calls.add(attempt)
    this.sending = attempt
    return attempt
  }

  /** The call's synchronous send is over. */
  sent(): void {
    this.sending = undefined
  }

  /** The attempt ended: nothing is attributed to it any more. */
  end(attempt: Attempt): void {
    this.calls.delete(attempt)
    if (attempt.ids.length === 0) return
    for (const id of attempt.ids) this.byId.delete(id)
    // A server request it caused that no handler took (the call ended first) is forgotten too.
    for (const [serverId, ours] of this.relatedTo) if (attempt.ids.includes(ours)) this.relatedTo.delete(serverId)
  }

  /** A message goes out on the transport: a request sent during a call's send is that call's. */
  outgoing(message: unknown): void {
    const attempt = this.sending
    if (attempt === undefined || !this.exact || !isJSONRPCRequest(message)) return
    attempt.ids.push(message.id)
    this.byId.set(message.id, attempt)
  }

  /** The server sent request `serverId` on the response stream of our request `ours`. */
  related(serverId: RequestId, ours: RequestId): void {
    this.relatedTo.set(serverId, ours)
  }

  /** The call a server request belongs to, or `undefined` when it cannot be known. */
  owner(serverId: RequestId): CallInfo | undefined {
    if (this.exact) {
      const ours = this.relatedTo.get(serverId)
      this.relatedTo.delete(serverId)
      return ours === undefined ? undefined : this.byId.get(ours)?.call
    }
    if (this.calls.size !== 1 || this.holders() !== 1) return undefined
    for (const attempt of this.calls) return attempt.call
    return undefined
  }
}
