/**
 * Paged lists (`FixtureServerOptions.pageSize`): tools/list, prompts/list, resources/list and
 * resources/templates/list answer a page at a time with `nextCursor`, around McpServer's own handlers.
 */
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js"
import {
  ErrorCode,
  ListPromptsRequestSchema,
  ListPromptsResultSchema,
  ListResourcesRequestSchema,
  ListResourcesResultSchema,
  ListResourceTemplatesRequestSchema,
  ListResourceTemplatesResultSchema,
  ListToolsRequestSchema,
  ListToolsResultSchema
} from "@modelcontextprotocol/sdk/types.js"
import { JsonRpcError, requestHandler } from "./sdk.js"

interface Page<A> {
  readonly items: Array<A>
  /** Present when more items follow: the offset of the next page, as text. */
  readonly more: { nextCursor: string } | Record<string, never>
}

/** The offset a cursor stands for; a cursor this server could not have issued is InvalidParams. */
const offsetOf = (cursor: string | undefined, length: number): number => {
  if (cursor === undefined) return 0
  if (/^\d+$/.test(cursor) && Number(cursor) <= length) return Number(cursor)
  throw new JsonRpcError(ErrorCode.InvalidParams, `Invalid cursor: ${cursor}`)
}

const pageOf = <A>(all: ReadonlyArray<A>, cursor: string | undefined, pageSize: number): Page<A> => {
  const offset = offsetOf(cursor, all.length)
  const end = offset + pageSize
  return { items: all.slice(offset, end), more: end < all.length ? { nextCursor: String(end) } : {} }
}

/** Makes the four list methods of `mcp` answer `pageSize` items at a time. */
export const paginateLists = (mcp: McpServer, pageSize: number): void => {
  if (!Number.isSafeInteger(pageSize) || pageSize < 1) {
    throw new Error(`mcp-pool fixture: pageSize must be a positive integer, got ${pageSize}`)
  }

  const listTools = requestHandler(mcp, "tools/list")
  mcp.server.setRequestHandler(ListToolsRequestSchema, async (request, extra) => {
    const { tools, ...rest } = ListToolsResultSchema.parse(await listTools(request, extra))
    const { items, more } = pageOf(tools, request.params?.cursor, pageSize)
    return { ...rest, tools: items, ...more }
  })

  const listPrompts = requestHandler(mcp, "prompts/list")
  mcp.server.setRequestHandler(ListPromptsRequestSchema, async (request, extra) => {
    const { prompts, ...rest } = ListPromptsResultSchema.parse(await listPrompts(request, extra))
    const { items, more } = pageOf(prompts, request.params?.cursor, pageSize)
    return { ...rest, prompts: items, ...more }
  })

  const listResources = requestHandler(mcp, "resources/list")
  mcp.server.setRequestHandler(ListResourcesRequestSchema, async (request, extra) => {
    const { resources, ...rest } = ListResourcesResultSchema.parse(await listResources(request, extra))
    const { items, more } = pageOf(resources, request.params?.cursor, pageSize)
    return { ...rest, resources: items, ...more }
  })

  const listTemplates = requestHandler(mcp, "resources/templates/list")
  mcp.server.setRequestHandler(ListResourceTemplatesRequestSchema, async (request, extra) => {
    const { resourceTemplates, ...rest } = ListResourceTemplatesResultSchema.parse(await listTemplates(request, extra))
    const { items, more } = pageOf(resourceTemplates, request.params?.cursor, pageSize)
    return { ...rest, resourceTemplates: items, ...more }
  })
}
