/**
 * What a server's session layer (catalog, subscriptions, server requests, logging) needs of the
 * pool that serves the server now. A pool gives one when it starts; the newest one serves.
 */
import type { Client } from "@modelcontextprotocol/sdk/client/index.js"
import type * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import type { MCPCallError } from "../Errors.js"

export interface PoolHost {
  /** The pool's `requestTimeout`, in milliseconds. */
  readonly requestTimeoutMs: number
  /**
   * Borrows a connection and makes it the pool's anchor (kept open while anchored, never retired
   * as idle), runs `use` with its client, and gives it back. `lost` is called once the anchored
   * connection leaves the pool.
   */
  readonly anchor: <A>(
    use: (client: Client) => Effect.Effect<A, MCPCallError>,
    lost: () => void
  ) => Effect.Effect<A, MCPCallError>
  /** Ends the anchoring (the connection stays in the pool as any other). */
  readonly unanchor: () => void
  /** The anchored connection's client while it is in the pool. */
  readonly anchored: () => Client | undefined
  /** The clients of the pool's live connections. */
  readonly clients: () => ReadonlyArray<Client>
  /** The typed error of a request sent on one of the pool's clients that failed. */
  readonly failure: (method: string, cause: unknown) => MCPCallError
  /** Removes the server's secrets from a text. */
  readonly scrub: (text: string) => string
  /** Forks work into the pool's scope, with the pool's services (its clock). */
  readonly fork: <A, E>(effect: Effect.Effect<A, E>) => Fiber.Fiber<A, E>
}
