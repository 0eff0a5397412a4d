/**
 * The tools that send a request from the server to the client (`elicit`, `sample`, `roots`), each related
 * to the tools/call that asked for it: over Streamable HTTP it travels on that call's response stream.
 */
import { randomUUID } from "node:crypto"
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js"
import {
  CreateMessageResultSchema,
  ElicitResultSchema,
  ListRootsResultSchema
} from "@modelcontextprotocol/sdk/types.js"
import type { CallToolResult, ElicitRequestFormParams, ElicitResult } from "@modelcontextprotocol/sdk/types.js"
import * as z from "zod"
import { errorMessage, json, toolError } from "./results.js"

/** The default of each field of the `elicit` tool's form: one field of each primitive kind. */
export const elicitFormDefaults = {
  name: "fixture",
  count: 3,
  ratio: 0.5,
  color: "green",
  confirm: true
} as const

/** The URL the `elicit` tool sends in URL mode unless the call passes its own. */
export const ELICIT_DEFAULT_URL = "https://example.com/fixture-elicitation"

/** The `maxTokens` the `sample` tool asks for unless the call passes its own. */
export const SAMPLE_DEFAULT_MAX_TOKENS = 100

const elicitFormSchema: ElicitRequestFormParams["requestedSchema"] = {
  type: "object",
  properties: {
    name: { type: "string", title: "Name", default: elicitFormDefaults.name },
    count: { type: "integer", title: "Count", default: elicitFormDefaults.count },
    ratio: { type: "number", title: "Ratio", default: elicitFormDefaults.ratio },
    color: { type: "string", title: "Color", enum: ["red", "green", "blue"], default: elicitFormDefaults.color },
    confirm: { type: "boolean", title: "Confirm", default: elicitFormDefaults.confirm }
  }
}

/**
 * Answers with what `ask` resolved to (as JSON text and as structuredContent `{ result }`), or, if the
 * client (or the SDK, before sending) refused, with a tool error carrying the error's message.
 */
const answerWith = async (
  ask: () => Promise<Record<string, unknown>>,
  extra: Record<string, unknown> = {}
): Promise<CallToolResult> => {
  try {
    const result = await ask()
    return json({ result, ...extra }, result)
  } catch (error) {
    return toolError(errorMessage(error))
  }
}

/** Registers `elicit`, `sample` and `roots` on `mcp`. */
export const registerServerRequestTools = (mcp: McpServer): void => {
  mcp.registerTool(
    "elicit",
    {
      description:
        "Sends elicitation/create to the client (a form with a default for each primitive kind, or a URL) and returns its answer.",
      inputSchema: {
        message: z.string().optional(),
        mode: z.enum(["form", "url"]).optional(),
        url: z.string().url().optional()
      }
    },
    async ({ message, mode = "form", url = ELICIT_DEFAULT_URL }, extra) => {
      const options = { signal: extra.signal }
      if (mode === "form") {
        const params = {
          mode,
          message: message ?? "Please fill in the fixture form.",
          requestedSchema: elicitFormSchema
        }
        return answerWith(() =>
          extra.sendRequest({ method: "elicitation/create", params }, ElicitResultSchema, options)
        )
      }
      const elicitationId = randomUUID()
      const ask = async (): Promise<ElicitResult> => {
        const params = { mode, message: message ?? "Please open the fixture page.", url, elicitationId }
        const result = await extra.sendRequest({ method: "elicitation/create", params }, ElicitResultSchema, options)
        // The out-of-band interaction "completes" at once once the user accepted.
        if (result.action === "accept") {
          await extra.sendNotification({ method: "notifications/elicitation/complete", params: { elicitationId } })
        }
        return result
      }
      return answerWith(ask, { elicitationId })
    }
  )

  mcp.registerTool(
    "sample",
    {
      description: "Sends sampling/createMessage with the prompt as one user message and returns the client's answer.",
      inputSchema: { prompt: z.string(), maxTokens: z.number().int().positive().optional() }
    },
    async ({ prompt, maxTokens = SAMPLE_DEFAULT_MAX_TOKENS }, extra) => {
      const params = {
        messages: [{ role: "user" as const, content: { type: "text" as const, text: prompt } }],
        maxTokens
      }
      return answerWith(() =>
        extra.sendRequest({ method: "sampling/createMessage", params }, CreateMessageResultSchema, {
          signal: extra.signal
        })
      )
    }
  )

  mcp.registerTool("roots", { description: "Sends roots/list to the client and returns its answer." }, async (extra) =>
    answerWith(() => extra.sendRequest({ method: "roots/list" }, ListRootsResultSchema, { signal: extra.signal }))
  )
}
