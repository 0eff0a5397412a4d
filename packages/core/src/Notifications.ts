/**
 * What a server tells its clients without being asked, as the pool passes it on: its lists
 * changed, a subscribed resource was updated. (Its log messages go to the effect logger.)
 *
 * @since 0.1.0
 */
import type { ResourceUpdatedNotification } from "@modelcontextprotocol/sdk/types.js"

/**
 * A server said one of its lists changed (`notifications/<list>/list_changed`). The pool
 * forgot its copy of that list before telling anyone.
 *
 * @since 0.1.0
 * @category models
 */
export interface ListChanged {
  readonly serverName: string
  readonly list: "tools" | "prompts" | "resources"
}

/**
 * A subscribed resource was updated (`notifications/resources/updated`).
 *
 * @since 0.1.0
 * @category models
 */
export type ResourceUpdated = ResourceUpdatedNotification["params"]

/**
 * A subscription to a resource: updates reach its listener until it is ended.
 *
 * @since 0.1.0
 * @category models
 */
export interface ResourceSubscription<Unsubscribe> {
  readonly uri: string
  /** Ends this subscription; the server is told once no subscriber of the resource is left. */
  readonly unsubscribe: () => Unsubscribe
}
