/**
 * The handlers a connection's SDK client answers the server's requests with: the call's own
 * handler when the request is attributed to a call that has one, else the server's; each run
 * under a timeout (within what is left of its call's, or the pool's request timeout), its
 * failure answered as a JSON-RPC error.
 */
import type { Client } from "@modelcontextprotocol/sdk/client/index.js"
import type { RequestHandlerExtra } from "@modelcontextprotocol/sdk/shared/protocol.js"
import {
  type ClientNotification,
  type ClientRequest,
  CreateMessageRequestSchema,
  type ElicitationCompleteNotification,
  ElicitationCompleteNotificationSchema,
  ElicitRequestSchema,
  ErrorCode,
  ListRootsRequestSchema,
  McpError,
  type ServerNotification,
  type ServerRequest
} from "@modelcontextprotocol/sdk/types.js"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as Cause from "effect/Cause"
import { describeCause } from "../internal/classify.js"
import type * as ServerRequests from "../ServerRequests.js"
import { type Attribution, type CallInfo, handlerBudget } from "./Attribution.js"
import type { UrlElicitations } from "./UrlElicitations.js"

type Extra = RequestHandlerExtra<ClientRequest | ServerRequest, ClientNotification | ServerNotification>

/** What routing needs of the pool whose connection it serves. */
export interface RoutingContext {
  readonly serverName: string
  /** The server's handlers (its own over the manager's): they decide what is advertised. */
  readonly handlers: ServerRequests.Handlers
  /** How long a handler answering for no call may take. */
  readonly requestTimeoutMs: number
  /** Runs a handler's effect with the pool's services (its clock), in the pool's scope. */
  readonly fork: <A, E>(effect: Effect.Effect<A, E>) => Fiber.Fiber<A, E>
  /** The server's URL-mode elicitations answered and not completed yet. */
  readonly elicitations: UrlElicitations
}

/** The MCP method each kind of handler answers. */
export const methods: Readonly<Record<ServerRequests.Kind, string>> = {
  elicitation: "elicitation/create",
  sampling: "sampling/createMessage",
  roots: "roots/list"
}

class HandlerTimeout extends Error {
  readonly _tag = "HandlerTimeout"
  constructor(readonly timeoutMs: number) {
    super(`did not answer within ${timeoutMs} ms`)
  }
}

/** A handler's answer, whichever form it took, as an effect. */
const fromAnswer = <A>(answer: ServerRequests.Answer<A>): Effect.Effect<A, unknown> =>
  Effect.isEffect(answer)
    ? (answer as Effect.Effect<A, unknown>)
    : Effect.tryPromise({ try: () => Promise.resolve(answer), catch: (cause) => cause })

/** The JSON-RPC error the server gets for a handler that failed: its own `McpError`, or a plain one. */
const toServerError = (kind: ServerRequests.Kind, timeoutMs: number, cause: Cause.Cause<unknown>): McpError => {
  const error = Cause.squash(cause)
  if (error instanceof HandlerTimeout) {
    return new McpError(ErrorCode.RequestTimeout, `the client's ${kind} handler did not answer within ${timeoutMs} ms`)
  }
  if (error instanceof McpError) return error
  // What the application's handler threw stays here (it may say more than the server should know).
  return new McpError(ErrorCode.InternalError, `the client's ${kind} handler failed`)
}

/**
 * Answers one server request: finds the call it belongs to, picks the handler, runs it under a
 * timeout, and aborts it when the server cancels.
 */
const answer = <A>(
  context: RoutingContext,
  attribution: Attribution,
  kind: ServerRequests.Kind,
  extra: Extra,
  invoke: (handlers: ServerRequests.Handlers, handlerContext: ServerRequests.HandlerContext) => ServerRequests.Answer<A>
): Promise<A> => {
  const call: CallInfo | undefined = attribution.owner(extra.requestId)
  const own = call?.handlers?.[kind] === undefined ? undefined : call.handlers
  const timeoutMs = call === undefined ? context.requestTimeoutMs : handlerBudget(call, performance.now())
  const controller = new AbortController()
  const handlerContext: ServerRequests.HandlerContext = {
    serverName: context.serverName,
    call: call === undefined ? undefined : { method: call.method, target: call.target },
    signal: controller.signal
  }
  const program = Effect.suspend(() => fromAnswer(invoke(own ?? context.handlers, handlerContext))).pipe(
    Effect.timeoutOrElse({ duration: timeoutMs, orElse: () => Effect.fail(new HandlerTimeout(timeoutMs)) }),
    Effect.onExit((exit) =>
      Effect.sync(() => {
        if (Exit.isFailure(exit)) controller.abort(Cause.squash(exit.cause))
      })
    ),
    Effect.tapCause((cause) =>
      Cause.hasInterruptsOnly(cause)
        ? Effect.void
        : Effect.logWarning(`the ${kind} handler failed: ${describeCause(Cause.squash(cause))}`).pipe(
            Effect.annotateLogs({ server: context.serverName, method: methods[kind] })
          )
    )
  )
  return new Promise<A>((resolve, reject) => {
    const fiber = context.fork(program)
    const cancelled = () => fiber.interruptUnsafe()
    extra.signal.addEventListener("abort", cancelled, { once: true })
    fiber.addObserver((exit) => {
      extra.signal.removeEventListener("abort", cancelled)
      if (Exit.isSuccess(exit)) resolve(exit.value)
      else reject(toServerError(kind, timeoutMs, exit.cause))
    })
  })
}

/**
 * Installs on `client` a handler for each kind the server has one for (its client was made
 * with the matching capabilities). Kinds without one stay unanswered by the SDK: the server gets
 * `-32601 Method not found`, as from a client without the capability.
 */
export const install = (client: Client, attribution: Attribution, context: RoutingContext): void => {
  const { handlers } = context
  if (handlers.elicitation !== undefined) {
    client.setRequestHandler(ElicitRequestSchema, (request, extra) =>
      answer(context, attribution, "elicitation", extra, (h, c) => {
        const params = request.params
        // Remembered before the answer: the server may complete it as soon as it has one.
        if (params.mode === "url" && h.elicitationComplete !== undefined) {
          context.elicitations.answered(params.elicitationId, h.elicitationComplete)
        }
        return h.elicitation?.(params, c) ?? unreachable()
      })
    )
    client.setNotificationHandler(ElicitationCompleteNotificationSchema, (notification) =>
      completed(context, notification.params)
    )
  }
  if (handlers.sampling !== undefined) {
    client.setRequestHandler(CreateMessageRequestSchema, (request, extra) =>
      answer(context, attribution, "sampling", extra, (h, c) => h.sampling?.(request.params, c) ?? unreachable())
    )
  }
  if (handlers.roots !== undefined) {
    client.setRequestHandler(ListRootsRequestSchema, (_request, extra) =>
      answer(context, attribution, "roots", extra, (h, c) => h.roots?.(c) ?? unreachable())
    )
  }
}

/**
 * A URL-mode elicitation completed: the handlers that answered it are told, else the server's.
 * What the handler throws is logged.
 */
const completed = (context: RoutingContext, params: ElicitationCompleteNotification["params"]): void => {
  const handler = context.elicitations.completed(params.elicitationId) ?? context.handlers.elicitationComplete
  if (handler === undefined) return
  try {
    handler(params, { serverName: context.serverName })
  } catch (error) {
    context.fork(
      Effect.logWarning(`the elicitationComplete handler failed: ${describeCause(error)}`).pipe(
        Effect.annotateLogs({ server: context.serverName, method: "notifications/elicitation/complete" })
      )
    )
  }
}

/** A kind is installed only when the server's handlers have it, and a call's are used only when they have it too. */
const unreachable = (): never => {
  throw new McpError(ErrorCode.InternalError, "no handler")
}
