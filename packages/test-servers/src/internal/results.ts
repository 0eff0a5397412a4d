/**
 * The shapes of the fixture's tool results: plain text, JSON (as text and as structuredContent)
 * and tool errors (`isError: true`) that carry an error's message.
 */
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js"

/** A result with one text block. */
export const text = (value: string): CallToolResult => ({ content: [{ type: "text", text: value }] })

/** A result whose text is `shown` as JSON and whose structuredContent is `structured`. */
export const json = (structured: Record<string, unknown>, shown: unknown = structured): CallToolResult => ({
  content: [{ type: "text", text: JSON.stringify(shown) }],
  structuredContent: structured
})

/** A tool error result (`isError: true`) with `message` as its text. */
export const toolError = (message: string): CallToolResult => ({
  isError: true,
  content: [{ type: "text", text: message }]
})

/** The message of a thrown value, as a tool error shows it. */
export const errorMessage = (error: unknown): string => (error instanceof Error ? error.message : String(error))
