/**
 * The URL-mode elicitations a pool's handlers answered, by `elicitationId`, until the server
 * says they completed: the completion goes to the handlers that answered (see
 * `ServerRequests.ElicitationCompleteHandler`). Shared by the server's connections, since a
 * server may complete an elicitation on any of them.
 */
import type * as ServerRequests from "../ServerRequests.js"

/** How many elicitations are remembered; past it, the oldest is forgotten (its completion goes to the server's handler). */
export const MAX_PENDING = 1000

/** Elicitations answered and not completed yet, oldest first. */
export class UrlElicitations {
  private readonly pending = new Map<string, ServerRequests.ElicitationCompleteHandler>()

  /** The elicitation `id` was answered by handlers whose completion handler is `handler`. */
  answered(id: string, handler: ServerRequests.ElicitationCompleteHandler): void {
    this.pending.delete(id)
    this.pending.set(id, handler)
    if (this.pending.size > MAX_PENDING) {
      const oldest = this.pending.keys().next()
      if (oldest.done !== true) this.pending.delete(oldest.value)
    }
  }

  /** The elicitation `id` completed: who answered it, forgotten now (undefined when not known). */
  completed(id: string): ServerRequests.ElicitationCompleteHandler | undefined {
    const handler = this.pending.get(id)
    this.pending.delete(id)
    return handler
  }
}
