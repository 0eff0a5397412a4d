/**
 * What a pool offers its server's session layer (see `session/PoolHost`): an anchored
 * connection for resource subscriptions, its live clients, its timeout and its error typing.
 */
import * as Effect from "effect/Effect"
import { classify } from "../internal/classify.js"
import * as Connection from "../internal/connection.js"
import type { PoolHost } from "../session/PoolHost.js"
import { closed, withConnection } from "./Admission.js"
import { Forwarded, type PoolState } from "./State.js"

/** The typed error of a request sent straight on one of the pool's clients. */
const failure = (state: PoolState, method: string, cause: unknown) => {
  const classified = classify(cause, {
    serverName: state.serverName,
    method,
    transport: state.server.transport,
    scrub: state.scrub
  })
  return classified.error
}

/** The pool's side of its server's session layer. */
export const host = (state: PoolState): PoolHost => ({
  requestTimeoutMs: state.limits.requestTimeoutMs,
  anchor: (use, lost) =>
    withConnection(state, (connection) =>
      Effect.suspend(() => {
        const member = state.members.find((m) => m.connection === connection)
        if (member !== undefined) state.anchor = { member, lost }
        return use(connection.client)
      })
    ).pipe(
      // A pool replaced meanwhile does not anchor: the caller tries the pool that serves now.
      Effect.catchIf(
        (error): error is Forwarded => error instanceof Forwarded,
        () => Effect.fail(closed(state, "subscribeResource"))
      )
    ),
  unanchor: () => {
    state.anchor = undefined
  },
  anchored: () => {
    const member = state.anchor?.member
    return member === undefined || member.removed || !Connection.isAlive(member.connection)
      ? undefined
      : member.connection.client
  },
  clients: () =>
    state.members.filter((m) => !m.removed && Connection.isAlive(m.connection)).map((m) => m.connection.client),
  failure: (method, cause) => failure(state, method, cause),
  scrub: state.scrub,
  fork: state.background
})
