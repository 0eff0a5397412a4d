/**
 * Answering what a server asks of its client: elicitation, sampling and roots handlers, given
 * for the whole manager, for one server, or for one call.
 *
 * A connection advertises a capability only when the manager or its server has a handler for
 * it. A request the server sends while serving a call goes to that call's handler when the pool
 * knows which call caused it, else to the server's (or the manager's) handler; never to another
 * caller's. See docs/protocol.md for the exact rule.
 *
 * @since 0.1.0
 */
import type {
  ClientCapabilities,
  CreateMessageRequest,
  CreateMessageResult,
  CreateMessageResultWithTools,
  ElicitationCompleteNotification,
  ElicitRequest,
  ElicitResult,
  ListRootsResult
} from "@modelcontextprotocol/sdk/types.js"
import type * as Effect from "effect/Effect"

/**
 * What a handler is told of the request it answers.
 *
 * @since 0.1.0
 * @category models
 */
export interface HandlerContext {
  /** The server that asked. */
  readonly serverName: string
  /**
   * The call the request was made for, when the pool knows it (see the module's rule); absent
   * when the handler answers for the server as a whole.
   */
  readonly call?: { readonly method: string; readonly target?: string | undefined } | undefined
  /** Aborts when the server cancels its request, or the handler ran out of time. */
  readonly signal: AbortSignal
}

/**
 * A handler's answer: a value, a promise of one, or an `Effect` (run with no services; its
 * failure is a failed answer).
 *
 * @since 0.1.0
 * @category models
 */
export type Answer<A> = A | PromiseLike<A> | Effect.Effect<A, unknown>

/**
 * Answers `elicitation/create` (form or URL mode): `{ action: "accept", content }`,
 * `{ action: "decline" }` or `{ action: "cancel" }`. In form mode, fields the answer leaves out
 * get the defaults of the server's schema.
 *
 * @since 0.1.0
 * @category models
 */
export type ElicitationHandler = (params: ElicitRequest["params"], context: HandlerContext) => Answer<ElicitResult>

/**
 * Answers `sampling/createMessage`: the model's message.
 *
 * @since 0.1.0
 * @category models
 */
export type SamplingHandler = (
  params: CreateMessageRequest["params"],
  context: HandlerContext
) => Answer<CreateMessageResult | CreateMessageResultWithTools>

/**
 * Answers `roots/list`: the roots the server may work in.
 *
 * @since 0.1.0
 * @category models
 */
export type RootsHandler = (context: HandlerContext) => Answer<ListRootsResult>

/**
 * Told that an out-of-band (URL-mode) elicitation completed: the server sent
 * `notifications/elicitation/complete` with its `elicitationId`. It reaches the handlers that
 * answered that elicitation (a call's own, when they have this handler too), else the server's.
 * What it throws is logged, never sent to the server.
 *
 * @since 0.1.0
 * @category models
 */
export type ElicitationCompleteHandler = (
  params: ElicitationCompleteNotification["params"],
  context: { readonly serverName: string }
) => void

/**
 * Handlers for what a server may ask. For the manager and a server, each handler present makes
 * its connections advertise the capability; for a call, a handler answers only the requests the
 * pool attributes to that call.
 *
 * @since 0.1.0
 * @category models
 */
export interface Handlers {
  readonly elicitation?: ElicitationHandler | undefined
  readonly sampling?: SamplingHandler | undefined
  readonly roots?: RootsHandler | undefined
  /** Told when a URL-mode elicitation completes; advertises nothing of its own. */
  readonly elicitationComplete?: ElicitationCompleteHandler | undefined
}

/**
 * The kinds of server requests, by the handler that answers them.
 *
 * @since 0.1.0
 * @category models
 */
export type Kind = Exclude<keyof Handlers, "elicitationComplete">

/**
 * Every kind of handler.
 *
 * @since 0.1.0
 * @category constants
 */
export const kinds: ReadonlyArray<Kind> = ["elicitation", "sampling", "roots"]

/**
 * Every field a handlers object may have: the kinds, and `elicitationComplete`.
 *
 * @since 0.1.0
 * @category constants
 */
export const handlerNames: ReadonlyArray<keyof Handlers> = [...kinds, "elicitationComplete"]

/**
 * The server's handlers over the manager's: a server's handler of a kind replaces the manager's.
 *
 * @since 0.1.0
 * @category utils
 */
export const merge = (manager: Handlers | undefined, server: Handlers | undefined): Handlers => ({
  elicitation: server?.elicitation ?? manager?.elicitation,
  sampling: server?.sampling ?? manager?.sampling,
  roots: server?.roots ?? manager?.roots,
  elicitationComplete: server?.elicitationComplete ?? manager?.elicitationComplete
})

/**
 * The capabilities a client with these handlers advertises: elicitation in form (with defaults
 * applied) and URL mode, sampling, roots with list-changed notifications.
 *
 * @since 0.1.0
 * @category utils
 */
export const capabilities = (handlers: Handlers): ClientCapabilities => ({
  ...(handlers.elicitation === undefined ? {} : { elicitation: { form: { applyDefaults: true }, url: {} } }),
  ...(handlers.sampling === undefined ? {} : { sampling: {} }),
  ...(handlers.roots === undefined ? {} : { roots: { listChanged: true } })
})

/**
 * Whether any handler is given.
 *
 * @since 0.1.0
 * @category utils
 */
export const isEmpty = (handlers: Handlers): boolean =>
  handlers.elicitation === undefined && handlers.sampling === undefined && handlers.roots === undefined
