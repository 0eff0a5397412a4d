/**
 * The list requests of the catalog: which calls it may answer, and a whole list read page by
 * page on one connection.
 */
import type { Client } from "@modelcontextprotocol/sdk/client/index.js"
import type { RequestOptions } from "@modelcontextprotocol/sdk/shared/protocol.js"
import { ErrorCode, McpError } from "@modelcontextprotocol/sdk/types.js"
import type { ListKind } from "../session/Catalog.js"

/** The most pages read for one list: a server whose cursors never end is refused past it. */
export const MAX_PAGES = 1000

/** Each list: its MCP method, the field of its items, and the SDK call of one page. */
export const lists = {
  tools: {
    method: "tools/list",
    field: "tools",
    page: (client: Client, params: PageParams, options: RequestOptions) => client.listTools(params, options)
  },
  prompts: {
    method: "prompts/list",
    field: "prompts",
    page: (client: Client, params: PageParams, options: RequestOptions) => client.listPrompts(params, options)
  },
  resources: {
    method: "resources/list",
    field: "resources",
    page: (client: Client, params: PageParams, options: RequestOptions) => client.listResources(params, options)
  },
  resourceTemplates: {
    method: "resources/templates/list",
    field: "resourceTemplates",
    page: (client: Client, params: PageParams, options: RequestOptions) => client.listResourceTemplates(params, options)
  }
} as const satisfies Record<ListKind, unknown>

interface PageParams {
  cursor?: string
  _meta?: Record<string, unknown>
}

interface Page {
  readonly nextCursor?: string | undefined
  readonly [key: string]: unknown
}

/**
 * Whether the catalog may answer a list call: no cursor, no `_meta` of the caller's, and no
 * per-call option but `signal` (and the pool's own `idempotent`, `handlers`).
 */
export const cacheable = (params: object | undefined, options: object | undefined): boolean => {
  for (const value of Object.values(params ?? {})) if (value !== undefined) return false
  for (const [key, value] of Object.entries(options ?? {})) {
    if (value !== undefined && key !== "signal" && key !== "idempotent" && key !== "handlers") return false
  }
  return true
}

/**
 * Reads a whole list on one client, following `nextCursor`: one answer with every item and no
 * `nextCursor`, the first page's other fields kept. A cursor that comes back, or more than
 * {@link MAX_PAGES} pages, is an error.
 */
export const readAll = async <K extends ListKind>(
  kind: K,
  client: Client,
  options: RequestOptions,
  meta: Readonly<Record<string, string>> | undefined
): Promise<Awaited<ReturnType<(typeof lists)[K]["page"]>>> => {
  const { field, page } = lists[kind]
  const params = (cursor: string | undefined): PageParams => ({
    ...(cursor === undefined ? {} : { cursor }),
    ...(meta === undefined ? {} : { _meta: { ...meta } })
  })
  const first: Page = await page(client, params(undefined), options)
  const items: Array<unknown> = [...asArray(first[field])]
  const seen = new Set<string>()
  for (let cursor = first.nextCursor; cursor !== undefined;) {
    if (seen.has(cursor) || seen.size >= MAX_PAGES) {
      throw new McpError(
        ErrorCode.InvalidRequest,
        `${lists[kind].method} did not end: ${seen.has(cursor) ? `cursor ${JSON.stringify(cursor)} came back` : `more than ${MAX_PAGES} pages`}`
      )
    }
    seen.add(cursor)
    const next: Page = await page(client, params(cursor), options)
    items.push(...asArray(next[field]))
    cursor = next.nextCursor
  }
  const { nextCursor: _, ...rest } = first
  return { ...rest, [field]: items } as Awaited<ReturnType<(typeof lists)[K]["page"]>>
}

const asArray = (value: unknown): ReadonlyArray<unknown> => (Array.isArray(value) ? value : [])
