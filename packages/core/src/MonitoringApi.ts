/**
 * The monitoring API, once for every front end: a framework-agnostic `handle` over the
 * manager, the response schemas, and an effect `HttpRouter` layer for Effect apps.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServerRequest from "effect/http/HttpServerRequest"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import type * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import * as Alerts from "./Alerts.js"
import { MCPManagerClosed, MCPServerNotFound } from "./Errors.js"
import { MCPConnectionManager } from "./MCPConnectionManager.js"
import * as Metrics from "./Metrics.js"

/**
 * Where the routes are mounted unless told otherwise.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultPrefix = "/api/v1/mcp"

/**
 * One request, as a front end hands it over: the path below the prefix (`/pools/fx`) and the
 * parsed query string (values as the framework parsed them).
 *
 * @since 0.1.0
 * @category models
 */
export interface Request {
  readonly method: string
  readonly path: string
  readonly query: Readonly<Record<string, unknown>>
}

/**
 * The answer: a status code, a JSON body, and headers to add.
 *
 * @since 0.1.0
 * @category models
 */
export interface Response {
  readonly status: number
  readonly body: unknown
  readonly headers?: Readonly<Record<string, string>> | undefined
}

/**
 * What an auth hook answers: `true` lets the request through, `false` denies it with 401,
 * or an explicit 401/403 with a message.
 *
 * @since 0.1.0
 * @category models
 */
export type AuthResult = boolean | { readonly status: 401 | 403; readonly error?: string | undefined }

/**
 * Options every front end shares.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<Req> {
  /** Where the routes live (default `/api/v1/mcp`). */
  readonly prefix?: string | undefined
  /** Sees each request first and allows or denies it; a denied request gets 401/403 and nothing else. */
  readonly auth?: ((request: Req) => AuthResult | Promise<AuthResult>) | undefined
  /** Serve `POST /pools/{server_name}/health-check` (default `true`). */
  readonly healthCheckRoute?: boolean | undefined
}

/**
 * The routes, for documentation and tests.
 *
 * @since 0.1.0
 * @category constants
 */
export const routes = [
  { method: "GET", path: "/status" },
  { method: "GET", path: "/pools" },
  { method: "GET", path: "/pools/{server_name}" },
  { method: "GET", path: "/alerts" },
  { method: "GET", path: "/servers" },
  { method: "GET", path: "/metrics/summary" },
  { method: "GET", path: "/config" },
  { method: "POST", path: "/pools/{server_name}/health-check" }
] as const

/**
 * A prefix with one leading slash and no trailing one (`""` for the root).
 *
 * @since 0.1.0
 * @category constructors
 */
export const normalizePrefix = (prefix: string | undefined = defaultPrefix): string => {
  const trimmed = prefix.trim().replace(/\/+$/, "")
  if (trimmed === "") return ""
  return trimmed.startsWith("/") ? trimmed : `/${trimmed}`
}

const json = (status: number, body: unknown, headers?: Record<string, string>): Response =>
  headers === undefined ? { status, body } : { status, body, headers }

const error = (status: number, message: string, headers?: Record<string, string>): Response =>
  json(status, { error: message }, headers)

/**
 * The response for an auth hook's answer, or `undefined` when the request may go on.
 *
 * @since 0.1.0
 * @category constructors
 */
export const authResponse = (result: AuthResult): Response | undefined => {
  if (result === true) return undefined
  if (result === false) return error(401, "unauthorized")
  return error(result.status, result.error ?? (result.status === 401 ? "unauthorized" : "forbidden"))
}

/**
 * Runs an auth hook: a hook that throws or rejects denies the request (401), so a bug in it
 * never lets a request through.
 *
 * @since 0.1.0
 * @category constructors
 */
export const authorize = async <Req>(auth: Options<Req>["auth"], request: Req): Promise<Response | undefined> => {
  if (auth === undefined) return undefined
  try {
    return authResponse(await auth(request))
  } catch {
    return error(401, "unauthorized")
  }
}

const decodeSegment = (segment: string): string | undefined => {
  try {
    return decodeURIComponent(segment)
  } catch {
    return undefined
  }
}

type Matched =
  | { readonly _tag: "Status" }
  | { readonly _tag: "Pools" }
  | { readonly _tag: "Pool"; readonly name: string }
  | { readonly _tag: "HealthCheck"; readonly name: string }
  | { readonly _tag: "Alerts" }
  | { readonly _tag: "Servers" }
  | { readonly _tag: "Summary" }
  | { readonly _tag: "Config" }

const match = (
  path: string,
  healthCheckRoute: boolean
): { readonly route: Matched; readonly method: string } | undefined => {
  const segments = path.split("/").filter((s) => s !== "")
  const [first, second, third] = segments
  switch (segments.length) {
    case 1:
      if (first === "status") return { route: { _tag: "Status" }, method: "GET" }
      if (first === "pools") return { route: { _tag: "Pools" }, method: "GET" }
      if (first === "alerts") return { route: { _tag: "Alerts" }, method: "GET" }
      if (first === "servers") return { route: { _tag: "Servers" }, method: "GET" }
      if (first === "config") return { route: { _tag: "Config" }, method: "GET" }
      return undefined
    case 2: {
      if (first === "metrics" && second === "summary") return { route: { _tag: "Summary" }, method: "GET" }
      const name = first === "pools" && second !== undefined ? decodeSegment(second) : undefined
      return name === undefined ? undefined : { route: { _tag: "Pool", name }, method: "GET" }
    }
    case 3: {
      if (!healthCheckRoute || first !== "pools" || second === undefined || third !== "health-check") return undefined
      const name = decodeSegment(second)
      return name === undefined ? undefined : { route: { _tag: "HealthCheck", name }, method: "POST" }
    }
    default:
      return undefined
  }
}

const single = (value: unknown): unknown => (Array.isArray(value) && value.length === 1 ? value[0] : value)

/**
 * Answers one request of the monitoring API. Never fails: an unknown server is a 404, a bad
 * query a 400, an unknown route a 404, a wrong method a 405, and anything unexpected a 500
 * with a plain message (the cause is logged, never sent).
 *
 * @since 0.1.0
 * @category handlers
 */
export const handle = (
  request: Request,
  options: { readonly healthCheckRoute?: boolean | undefined } = {}
): Effect.Effect<Response, never, MCPConnectionManager> =>
  Effect.gen(function* () {
    const method = request.method.toUpperCase()
    const matched = match(request.path, options.healthCheckRoute !== false)
    if (matched === undefined) return error(404, `no route ${method} ${request.path}`)
    const allowed = matched.method === "GET" ? ["GET", "HEAD"] : [matched.method]
    if (!allowed.includes(method)) {
      return error(405, `${method} is not allowed on ${request.path}; use ${matched.method}`, {
        allow: allowed.join(", ")
      })
    }
    const manager = yield* MCPConnectionManager
    if (manager.isClosed()) return error(503, new MCPManagerClosed({ serverName: "", operation: method }).message)
    const notFound = (name: string) =>
      error(
        404,
        new MCPServerNotFound({ serverName: name, knownServers: manager.servers().map((s) => s.name) }).message
      )
    const { route } = matched
    switch (route._tag) {
      case "Status":
        return json(200, yield* manager.status)
      case "Pools":
        return json(200, { pools: manager.pools().map(Metrics.poolMetrics) })
      case "Pool": {
        const pool = manager.pools().find((p) => p.serverName === route.name)
        if (pool === undefined) return notFound(route.name)
        return json(200, Metrics.poolDetails(pool, manager.config().servers[route.name]))
      }
      case "HealthCheck": {
        if (!manager.servers().some((s) => s.name === route.name)) return notFound(route.name)
        return json(200, yield* manager.healthCheck(route.name))
      }
      case "Alerts": {
        const query = Alerts.validateQuery({
          severity: single(request.query["severity"]),
          limit: single(request.query["limit"])
        })
        if (Result.isFailure(query)) return error(400, query.failure.message)
        return json(200, { alerts: manager.alerts.history(query.success) })
      }
      case "Servers":
        return json(200, { servers: manager.servers() })
      case "Summary":
        return json(200, Metrics.summary(manager.pools()))
      case "Config":
        return json(200, manager.config())
    }
  }).pipe(
    // The manager closed while the request ran; an unknown server was answered above.
    Effect.catchTags({
      MCPManagerClosed: (closed) => Effect.succeed(error(503, closed.message)),
      MCPServerNotFound: (missing) => Effect.succeed(error(404, missing.message))
    }),
    Effect.catchCause((cause) =>
      Cause.hasInterruptsOnly(cause)
        ? Effect.failCause(cause)
        : Effect.as(
            Effect.logError("the monitoring API failed to answer", cause),
            error(500, "internal error; see the server's log")
          )
    ),
    Effect.orDie
  )

// The response schemas live with the types they define (see `Metrics`).
export { HealthCheckSchema, PoolMetricsSchema, schemas } from "./internal/responses.js"

// ---------------------------------------------------------------------------
// effect HttpRouter
// ---------------------------------------------------------------------------

const toHttpResponse = (response: Response): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.jsonUnsafe(response.body, {
    status: response.status,
    ...(response.headers === undefined ? {} : { headers: response.headers })
  })

/**
 * The routes as an effect `HttpRouter` layer, for an Effect app served with
 * `@effect/platform-node`'s `NodeHttpServer` (or any effect HTTP server). The auth hook sees
 * the effect `HttpServerRequest`.
 *
 * @example
 * ```ts
 * import { MCPConnectionManager } from "@mcp-pool/core/MCPConnectionManager"
 * import * as MonitoringApi from "@mcp-pool/core/MonitoringApi"
 * import * as HttpRouter from "effect/http/HttpRouter"
 * import * as Layer from "effect/Layer"
 *
 * const App = HttpRouter.serve(MonitoringApi.layer({ prefix: "/api/v1/mcp" })).pipe(
 *   Layer.provide(MCPConnectionManager.layer({ configPath: "./.mcp.json" }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options<HttpServerRequest.HttpServerRequest> = {}
): Layer.Layer<never, never, HttpRouter.HttpRouter | MCPConnectionManager> => {
  const prefix = normalizePrefix(options.prefix)
  return HttpRouter.use((router) =>
    Effect.gen(function* () {
      const context = yield* Effect.context<MCPConnectionManager>()
      const serve = (request: HttpServerRequest.HttpServerRequest) =>
        Effect.gen(function* () {
          const denied = yield* Effect.promise(() => authorize(options.auth, request))
          if (denied !== undefined) return toHttpResponse(denied)
          const url = new URL(request.url, "http://localhost")
          const path = url.pathname.slice(prefix.length) || "/"
          const query: Record<string, string | Array<string>> = {}
          for (const key of new Set(url.searchParams.keys())) {
            const values = url.searchParams.getAll(key)
            query[key] = values.length === 1 ? (values[0] ?? "") : values
          }
          const response = yield* handle(
            { method: request.method, path, query },
            { healthCheckRoute: options.healthCheckRoute }
          ).pipe(Effect.provideContext(context))
          return toHttpResponse(response)
        })
      // `prefix` is "" or starts with "/".
      yield* router.add("*", `/${`${prefix}/*`.slice(1)}`, serve)
    })
  )
}
