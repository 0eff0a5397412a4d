/**
 * A server's session layer, shared by the pools that serve it in turn (a pool replaced by
 * `configureServerPool` hands over to the next): its handlers for server requests, its catalog,
 * its list-changed subscribers, its logging level and its resource subscriptions; and what each
 * new connection of its pools gets of them.
 */
import type { Client } from "@modelcontextprotocol/sdk/client/index.js"
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js"
import {
  type LoggingLevel,
  LoggingMessageNotificationSchema,
  PromptListChangedNotificationSchema,
  ResourceListChangedNotificationSchema,
  ResourceUpdatedNotificationSchema,
  ToolListChangedNotificationSchema
} from "@modelcontextprotocol/sdk/types.js"
import * as Effect from "effect/Effect"
import * as FiberSet from "effect/FiberSet"
import * as PubSub from "effect/PubSub"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { type MCPCallError, MCPManagerClosed } from "../Errors.js"
import { describeCause } from "../internal/classify.js"
import type { SessionTap } from "../internal/connection.js"
import type * as Notifications from "../Notifications.js"
import type * as ServerConfig from "../ServerConfig.js"
import * as ServerRequests from "../ServerRequests.js"
import { Attribution } from "./Attribution.js"
import { Catalog, changedLists } from "./Catalog.js"
import { attributingFetch } from "./httpStreams.js"
import { logServerMessage } from "./logging.js"
import type { PoolHost } from "./PoolHost.js"
import * as Routing from "./Routing.js"
import { UrlElicitations } from "./UrlElicitations.js"
import { Subscriptions } from "./Subscriptions.js"

/**
 * A server's session as its pools share it: what it reports without being asked, its resource
 * subscriptions, and the settings every connection gets.
 *
 * @since 0.1.0
 * @category models
 */
export interface ServerSession {
  /** Every list change the server reports, from any connection (after the catalog forgot that list). */
  readonly listChanged: Stream.Stream<Notifications.ListChanged>
  /** Calls `listener` with every list change until the returned function is called. */
  readonly onListChanged: (listener: (event: Notifications.ListChanged) => void) => () => void
  /**
   * Subscribes `listener` to updates of `uri`: the server is asked once per resource, on the
   * connection the pool keeps for subscriptions, and again on a new one if that one leaves.
   */
  readonly subscribeResource: (
    uri: string,
    listener: (update: Notifications.ResourceUpdated) => void
  ) => Effect.Effect<void, MCPCallError>
  /** Ends one subscriber of `uri`; the server is told when it was the last. */
  readonly unsubscribeResource: (
    uri: string,
    listener: (update: Notifications.ResourceUpdated) => void
  ) => Effect.Effect<void>
  /** The resources subscribed now. */
  readonly subscribedResources: () => ReadonlyArray<string>
  /** Sets the server's logging level on every connection, now and opened later. */
  readonly setLoggingLevel: (level: LoggingLevel) => Effect.Effect<void, MCPCallError>
  /** Tells every open connection that the client's roots changed. */
  readonly sendRootsListChanged: Effect.Effect<void, MCPManagerClosed>
}

/** A server's session layer, with what its pools need of it. */
export interface Hub extends ServerSession {
  readonly serverName: string
  /** The server's handlers (its own over the manager's). */
  readonly handlers: ServerRequests.Handlers
  readonly catalog: Catalog
  /** A pool starts serving the server: the newest serves. Returns its leave. */
  readonly serve: (host: PoolHost) => () => void
  /** What a new connection of the pool `host` gets of the session layer. */
  readonly tap: (host: PoolHost) => SessionTap
  /** A connection died: the server it is replaced by may list other things. */
  readonly connectionLost: () => void
}

/** Creates a server's session layer in the current scope (the manager's). */
export const make = (options: {
  readonly server: ServerConfig.ServerConfig
  readonly handlers?: ServerRequests.Handlers | undefined
}): Effect.Effect<Hub, never, Scope.Scope> =>
  Effect.gen(function* () {
    const { server } = options
    const serverName = server.name
    const handlers = options.handlers ?? {}
    const fork = yield* FiberSet.makeRuntime<never, void, never>()
    const pubsub = yield* Effect.acquireRelease(PubSub.unbounded<Notifications.ListChanged>(), PubSub.shutdown)
    const listeners = new Set<(event: Notifications.ListChanged) => void>()
    const hosts: Array<PoolHost> = []
    const current = (): PoolHost | undefined => hosts.at(-1)
    const catalog = new Catalog()
    const elicitations = new UrlElicitations()
    const closed = (operation: string) => new MCPManagerClosed({ serverName, operation })
    const subscriptions = new Subscriptions({
      serverName,
      current,
      closed,
      fork: (effect) => void fork(Effect.annotateLogs(effect, { server: serverName }))
    })
    let loggingLevel: LoggingLevel | undefined = undefined

    const changed = (list: Notifications.ListChanged["list"]): void => {
      catalog.invalidate(changedLists[list])
      const event: Notifications.ListChanged = { serverName, list }
      PubSub.publishUnsafe(pubsub, event)
      for (const listener of listeners) {
        try {
          listener(event)
        } catch (error) {
          fork(Effect.logWarning(`a list_changed listener of "${serverName}" threw: ${describeCause(error)}`))
        }
      }
    }

    const attach = (host: PoolHost, client: Client): void => {
      client.setNotificationHandler(ToolListChangedNotificationSchema, () => changed("tools"))
      client.setNotificationHandler(PromptListChangedNotificationSchema, () => changed("prompts"))
      client.setNotificationHandler(ResourceListChangedNotificationSchema, () => changed("resources"))
      client.setNotificationHandler(LoggingMessageNotificationSchema, (notification) => {
        host.fork(logServerMessage(serverName, notification.params, host.scrub))
      })
      client.setNotificationHandler(ResourceUpdatedNotificationSchema, (notification) => {
        for (const error of subscriptions.deliver(notification.params)) {
          host.fork(Effect.logWarning(`a resource subscriber of "${serverName}" threw: ${describeCause(error)}`))
        }
      })
    }

    /** A new connection: the logging level set for the server, when the server logs. */
    const ready = async (client: Client): Promise<void> => {
      const level = loggingLevel
      if (level === undefined || client.getServerCapabilities()?.logging === undefined) return
      await client.setLoggingLevel(level)
    }

    const tap = (host: PoolHost): SessionTap => {
      // Calls are tracked only when a server request can reach a handler.
      const tracked = !ServerRequests.isEmpty(handlers)
      const attribution = tracked ? new Attribution(server.transport === "streamable-http") : undefined
      return {
        capabilities: ServerRequests.capabilities(handlers),
        attribution,
        fetch: attribution?.exact === true ? attributingFetch(attribution) : undefined,
        attach: (client: Client, transport: Transport) => {
          attach(host, client)
          if (attribution === undefined) return
          Routing.install(client, attribution, {
            serverName,
            handlers,
            requestTimeoutMs: host.requestTimeoutMs,
            fork: host.fork,
            elicitations
          })
          if (!attribution.exact) return
          const send = transport.send.bind(transport)
          transport.send = (message, sendOptions) => {
            attribution.outgoing(message)
            return send(message, sendOptions)
          }
        },
        ready
      }
    }

    const hub: Hub = {
      serverName,
      handlers,
      catalog,
      listChanged: Stream.fromPubSub(pubsub),
      onListChanged: (listener) => {
        listeners.add(listener)
        return () => {
          listeners.delete(listener)
        }
      },
      subscribeResource: (uri, listener) => subscriptions.subscribe(uri, listener),
      unsubscribeResource: (uri, listener) => subscriptions.unsubscribe(uri, listener),
      subscribedResources: () => subscriptions.uris(),
      setLoggingLevel: (level) =>
        Effect.suspend(() => {
          loggingLevel = level
          const host = current()
          if (host === undefined) return Effect.fail(closed("setLoggingLevel"))
          return Effect.forEach(
            host.clients(),
            (client) =>
              Effect.tryPromise({
                try: () => client.setLoggingLevel(level, { timeout: host.requestTimeoutMs }),
                catch: (cause) => host.failure("logging/setLevel", cause)
              }),
            { concurrency: "unbounded", discard: true }
          )
        }),
      sendRootsListChanged: Effect.suspend(() => {
        const host = current()
        if (host === undefined) return Effect.fail(closed("sendRootsListChanged"))
        return Effect.forEach(
          host.clients(),
          (client) =>
            Effect.catch(
              Effect.tryPromise({ try: () => client.sendRootsListChanged(), catch: (cause) => cause }),
              (cause) =>
                Effect.logWarning(`could not tell a connection that the roots changed: ${describeCause(cause)}`)
            ),
          { concurrency: "unbounded", discard: true }
        )
      }),
      serve: (host) => {
        hosts.push(host)
        return () => {
          const index = hosts.indexOf(host)
          if (index !== -1) hosts.splice(index, 1)
        }
      },
      tap,
      connectionLost: () => catalog.invalidate()
    }
    return hub
  })
