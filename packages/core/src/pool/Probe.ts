/**
 * Whether a connection is alive, found out with an MCP `ping` bounded on the pool's clock: any
 * answer counts, a JSON-RPC error included (some servers do not implement `ping`).
 */
import { ErrorCode, McpError } from "@modelcontextprotocol/sdk/types.js"
import * as Effect from "effect/Effect"
import type * as Connection from "../Connection.js"
import { describeCause } from "../internal/classify.js"

/** The outcome of a probe: alive, or the reason it is not. */
export type Probed = { readonly alive: true } | { readonly alive: false; readonly reason: string }

const ALIVE: Probed = { alive: true }

/**
 * Whether the server answered: a JSON-RPC error is an answer (a server without `ping` says
 * `-32601 Method not found`, and is alive); a closed connection or the SDK's own timeout is not.
 */
const answered = (cause: unknown): boolean =>
  cause instanceof McpError && cause.code !== ErrorCode.ConnectionClosed && cause.code !== ErrorCode.RequestTimeout

/**
 * Pings a connection; it is alive when the server answers within `timeoutMs` (on the effect
 * clock, so `TestClock` drives the limit in tests). `what` names the ping in the reason, which
 * `scrub` rids of the server's secrets (an error can quote them).
 */
export const probe = (
  connection: Connection.Connection,
  timeoutMs: number,
  scrub: (text: string) => string,
  what: string = "ping"
): Effect.Effect<Probed> =>
  Effect.tryPromise({
    try: (signal) => connection.client.ping({ signal, timeout: timeoutMs }),
    catch: (cause) => cause
  }).pipe(
    Effect.as(ALIVE),
    Effect.timeoutOrElse({
      duration: timeoutMs,
      orElse: () => Effect.succeed<Probed>({ alive: false, reason: `did not answer a ${what} within ${timeoutMs} ms` })
    }),
    Effect.catch((cause) =>
      Effect.succeed<Probed>(
        answered(cause) ? ALIVE : { alive: false, reason: scrub(`failed a ${what}: ${describeCause(cause)}`) }
      )
    )
  )
