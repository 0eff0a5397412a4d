/**
 * The requests of the pooled tools that go to the server as they are (not answered from the
 * catalog): what each one is, and its SDK call with the caller's options, shared by the Effect
 * and Promise flavours.
 */
import type { Client } from "@modelcontextprotocol/sdk/client/index.js"
import type { RequestOptions } from "@modelcontextprotocol/sdk/shared/protocol.js"
import { EmptyResultSchema } from "@modelcontextprotocol/sdk/types.js"
import type { MCPConnectionPool, RequestInfo, TraceMeta } from "../MCPConnectionPool.js"
import type { CallOptions } from "../PooledMCPTools.js"
import { mergeOptions, withMeta } from "./callOptions.js"

type Result<K extends keyof Client> = Client[K] extends (...args: ReadonlyArray<never>) => Promise<infer A> ? A : never

export type SdkRun<A> = (client: Client, options: RequestOptions, meta: TraceMeta) => Promise<A>

/** A request sent to the server as it is (not answered from the catalog). */
export interface Plain<A> {
  readonly method: string
  readonly idempotent: boolean
  readonly target: string | undefined
  readonly run: SdkRun<A>
}

/** What the pool is given for a plain request: its description, and its SDK call with the caller's options. */
export const prepare = <A>(
  plain: Plain<A>,
  user: CallOptions | undefined
): { readonly info: RequestInfo; readonly send: SdkRun<A> } => {
  const { method, idempotent, target, run } = plain
  if (user === undefined) return { info: { method, idempotent, target }, send: run }
  return {
    info: { method, idempotent, target, signal: user.signal, handlers: user.handlers, timeoutMs: user.timeout },
    send: (client, options, meta) => run(client, mergeOptions(options, user), meta)
  }
}

/** The plain requests, each as the Effect and the Promise flavours send it. */
export const plain = {
  callTool: (
    pool: MCPConnectionPool,
    name: string,
    params: Parameters<Client["callTool"]>[0],
    resultSchema: Parameters<Client["callTool"]>[1],
    options: CallOptions | undefined
  ): Plain<Result<"callTool">> => ({
    method: "tools/call",
    idempotent: options?.idempotent === true,
    target: name,
    run: (client, o, meta) => {
      // The output schemas of the catalog's tools, which this client may never have listed.
      pool.primeClient(client)
      return client.callTool(withMeta(params, meta), resultSchema, o)
    }
  }),
  readResource: (params: Parameters<Client["readResource"]>[0]): Plain<Result<"readResource">> => ({
    method: "resources/read",
    idempotent: true,
    target: params.uri,
    run: (client, o, meta) => client.readResource(withMeta(params, meta), o)
  }),
  getPrompt: (params: Parameters<Client["getPrompt"]>[0]): Plain<Result<"getPrompt">> => ({
    method: "prompts/get",
    idempotent: true,
    target: params.name,
    run: (client, o, meta) => client.getPrompt(withMeta(params, meta), o)
  }),
  complete: (params: Parameters<Client["complete"]>[0]): Plain<Result<"complete">> => ({
    method: "completion/complete",
    idempotent: true,
    target: undefined,
    run: (client, o, meta) => client.complete(withMeta(params, meta), o)
  }),
  ping: (): Plain<Result<"ping">> => pingRequest
}

const pingRequest: Plain<Result<"ping">> = {
  method: "ping",
  idempotent: true,
  target: undefined,
  run: (client, o, meta) =>
    meta === undefined
      ? client.ping(o)
      : client.request({ method: "ping", params: { _meta: meta } }, EmptyResultSchema, o)
}

/** The tool name of `callTool`'s params, or `undefined` when they have none (an untyped caller may pass anything). */
export const toolName = (params: unknown): string | undefined => {
  const name: unknown = (params as { readonly name?: unknown } | null | undefined)?.name
  return typeof name === "string" && name !== "" ? name : undefined
}
