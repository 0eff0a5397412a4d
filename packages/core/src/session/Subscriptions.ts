/**
 * A server's resource subscriptions. A subscription is bound to the session it was made in, so
 * all of a server's live on one connection its pool keeps for them (the anchor): subscribed
 * there once per resource, made again on a new anchor when that connection leaves the pool,
 * and ended there when the last subscriber of a resource leaves.
 */
import type { Client } from "@modelcontextprotocol/sdk/client/index.js"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Semaphore from "effect/Semaphore"
import type { MCPCallError, MCPManagerClosed } from "../Errors.js"
import { describeCause } from "../internal/classify.js"
import type * as Notifications from "../Notifications.js"
import type { PoolHost } from "./PoolHost.js"

/** The longest pause between two tries to move the subscriptions to a new connection. */
const MAX_RETRY_MS = 30_000

type Listener = (update: Notifications.ResourceUpdated) => void

/** The errors of subscribing: the pool's, or the manager's close. */
export type SubscribeError = MCPCallError | MCPManagerClosed

export class Subscriptions {
  private readonly listeners = new Map<string, Set<Listener>>()
  /** The pool whose anchored connection holds the subscriptions now. */
  private anchoredOn: PoolHost | undefined = undefined
  /** One change of the subscriptions at a time (subscribe, unsubscribe, moving to a new anchor). */
  private readonly lock = Semaphore.makeUnsafe(1)

  constructor(
    private readonly options: {
      readonly serverName: string
      /** The pool that serves the server now. */
      readonly current: () => PoolHost | undefined
      /** The error when no pool serves it (the manager closed). */
      readonly closed: (operation: string) => MCPManagerClosed
      /** Forks work that outlives the pool it started in (moving to a new anchor). */
      readonly fork: (effect: Effect.Effect<void>) => void
    }
  ) {}

  /** The URIs subscribed now. */
  uris(): ReadonlyArray<string> {
    return Array.from(this.listeners.keys())
  }

  /** Subscribes `listener` to `uri`; the server is asked only for the first subscriber of a resource. */
  subscribe(uri: string, listener: Listener): Effect.Effect<void, SubscribeError> {
    return this.lock.withPermit(
      Effect.suspend(() => {
        const existing = this.listeners.get(uri)
        if (existing !== undefined) {
          existing.add(listener)
          return Effect.void
        }
        const host = this.options.current()
        if (host === undefined) return Effect.fail(this.options.closed("subscribeResource"))
        const anchored = this.anchoredOn === host ? host.anchored() : undefined
        const subscribed =
          anchored === undefined ? this.anchorOn(host, [uri]) : send(host, anchored, "resources/subscribe", uri)
        return Effect.map(subscribed, () => {
          this.listeners.set(uri, new Set([listener]))
        })
      })
    )
  }

  /** Ends one subscriber; the server is told when it was the resource's last. */
  unsubscribe(uri: string, listener: Listener): Effect.Effect<void> {
    return this.lock.withPermit(
      Effect.suspend(() => {
        const set = this.listeners.get(uri)
        if (set === undefined || !set.delete(listener) || set.size > 0) return Effect.void
        this.listeners.delete(uri)
        const host = this.anchoredOn
        const client = host?.anchored()
        if (this.listeners.size === 0) {
          host?.unanchor()
          this.anchoredOn = undefined
        }
        if (host === undefined || client === undefined) return Effect.void
        // The subscriber is gone whatever the server answers.
        return Effect.catch(send(host, client, "resources/unsubscribe", uri), (error) =>
          Effect.logWarning(`could not unsubscribe from ${uri}: ${error.message}`)
        )
      })
    )
  }

  /** Gives an update to the subscribers of its resource. */
  deliver(update: Notifications.ResourceUpdated): ReadonlyArray<unknown> {
    const failed: Array<unknown> = []
    for (const listener of this.listeners.get(update.uri) ?? []) {
      try {
        listener(update)
      } catch (error) {
        failed.push(error)
      }
    }
    return failed
  }

  /** Borrows a connection of `host`, makes it the anchor and subscribes it to `uris`. */
  private anchorOn(host: PoolHost, uris: ReadonlyArray<string>): Effect.Effect<void, MCPCallError> {
    return host
      .anchor(
        (client) => Effect.forEach(uris, (uri) => send(host, client, "resources/subscribe", uri), { discard: true }),
        () => this.lost(host)
      )
      .pipe(
        Effect.map(() => {
          this.anchoredOn = host
        })
      )
  }

  /** The anchor left its pool (it died, or its pool drains or closes): subscribe again elsewhere. */
  private lost(host: PoolHost): void {
    if (this.anchoredOn === host) this.anchoredOn = undefined
    if (this.listeners.size > 0) this.options.fork(this.moveOn(0))
  }

  private moveOn(attempt: number): Effect.Effect<void> {
    const once = this.lock.withPermit(
      Effect.suspend(() => {
        if (this.listeners.size === 0 || this.anchoredOn !== undefined) return Effect.void
        const host = this.options.current()
        // No pool serves the server any more: nothing to move to.
        if (host === undefined) return Effect.void
        return this.anchorOn(host, this.uris())
      })
    )
    return Effect.catch(once, (error) => {
      const delayMs = Math.min(MAX_RETRY_MS, 250 * 2 ** Math.min(attempt, 10))
      return Effect.logWarning(
        `resource subscriptions of "${this.options.serverName}" could not be made again (${describeCause(error)}); next try in ${delayMs} ms`
      ).pipe(Effect.andThen(Effect.sleep(Duration.millis(delayMs))), Effect.andThen(this.moveOn(attempt + 1)))
    })
  }
}

/** One subscribe or unsubscribe request on the anchored connection, its failure typed. */
const send = (
  host: PoolHost,
  client: Client,
  method: "resources/subscribe" | "resources/unsubscribe",
  uri: string
): Effect.Effect<void, MCPCallError> =>
  Effect.asVoid(
    Effect.tryPromise({
      try: () =>
        method === "resources/subscribe"
          ? client.subscribeResource({ uri }, { timeout: host.requestTimeoutMs })
          : client.unsubscribeResource({ uri }, { timeout: host.requestTimeoutMs }),
      catch: (cause) => host.failure(method, cause)
    })
  )
