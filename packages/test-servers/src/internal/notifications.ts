/**
 * The tools that make the server notify the client unasked: list changes (`add_tool`, `remove_tool`,
 * `notify`), log messages (`log`) and resource updates (`update_resource`, with its subscriptions).
 */
import type { McpServer, RegisteredTool } from "@modelcontextprotocol/sdk/server/mcp.js"
import {
  LoggingLevelSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema
} from "@modelcontextprotocol/sdk/types.js"
import * as z from "zod"
import { errorMessage, json, text, toolError } from "./results.js"
import { loggingFilter, loggingLevel } from "./sdk.js"

/** The `logger` of every message the `log` tool sends. */
export const LOGGER_NAME = "fixture"

/** Registers `add_tool` and `remove_tool`: tools added and removed at run time, on this instance only. */
const registerToolChanges = (mcp: McpServer): void => {
  const added = new Map<string, RegisteredTool>()

  mcp.registerTool(
    "add_tool",
    {
      description: "Registers a tool of the given name that returns {text}; the server sends tools/list_changed.",
      inputSchema: { name: z.string().min(1) }
    },
    ({ name }) => {
      try {
        const tool = mcp.registerTool(
          name,
          { description: "Added by add_tool: returns the given text.", inputSchema: { text: z.string() } },
          ({ text: value }) => text(value)
        )
        added.set(name, tool)
      } catch (error) {
        return toolError(errorMessage(error))
      }
      return text(`added ${name}`)
    }
  )

  mcp.registerTool(
    "remove_tool",
    {
      description: "Removes a tool added by add_tool; the server sends tools/list_changed.",
      inputSchema: { name: z.string() }
    },
    ({ name }) => {
      const tool = added.get(name)
      if (tool === undefined) return toolError(`no tool ${name} was added by add_tool`)
      added.delete(name)
      tool.remove()
      return text(`removed ${name}`)
    }
  )
}

/**
 * Registers `notify`: a list_changed notification with nothing changed. Like `log` and
 * `update_resource`, it sends its notification as part of the call (over Streamable HTTP, on the
 * call's response stream), so that it arrives before the call's answer on every transport.
 */
const registerNotify = (mcp: McpServer): void => {
  mcp.registerTool(
    "notify",
    {
      description: "Sends notifications/<kind>/list_changed without changing anything, before it answers.",
      inputSchema: { kind: z.enum(["tools", "prompts", "resources"]) }
    },
    async ({ kind }, extra) => {
      await extra.sendNotification({ method: `notifications/${kind}/list_changed` })
      return text(`sent notifications/${kind}/list_changed`)
    }
  )
}

/** Registers `log`: notifications/message through the SDK, which drops those below the session's level. */
const registerLog = (mcp: McpServer): void => {
  const ignored = loggingFilter(mcp)
  mcp.registerTool(
    "log",
    {
      description:
        "Sends notifications/message at the given level (or once at each of the 8 levels, lowest first) with the message as data; answers {attempted, sent, level}.",
      inputSchema: { level: LoggingLevelSchema.optional(), message: z.string().optional() }
    },
    async ({ level, message = "fixture log message" }, extra) => {
      const { sessionId } = extra
      const attempted = level === undefined ? LoggingLevelSchema.options : [level]
      // What the SDK will drop, by its own rule (the level set with logging/setLevel for this session).
      const sent = attempted.filter((each) => !ignored(each, sessionId))
      for (const each of sent) {
        await extra.sendNotification({
          method: "notifications/message",
          params: { level: each, logger: LOGGER_NAME, data: message }
        })
      }
      return json({ attempted, sent, level: loggingLevel(mcp, sessionId) ?? null })
    }
  )
}

/** Handles resources/subscribe and resources/unsubscribe; registers `update_resource` and `subscriptions`. */
const registerSubscriptions = (mcp: McpServer): void => {
  const subscribed = new Set<string>()
  mcp.server.setRequestHandler(SubscribeRequestSchema, ({ params }) => {
    subscribed.add(params.uri)
    return {}
  })
  mcp.server.setRequestHandler(UnsubscribeRequestSchema, ({ params }) => {
    subscribed.delete(params.uri)
    return {}
  })

  mcp.registerTool(
    "update_resource",
    {
      description:
        "Sends notifications/resources/updated for the uri if (and only if) it is subscribed; answers sent or not subscribed.",
      inputSchema: { uri: z.string() }
    },
    async ({ uri }, extra) => {
      if (!subscribed.has(uri)) return text("not subscribed")
      await extra.sendNotification({ method: "notifications/resources/updated", params: { uri } })
      return text("sent")
    }
  )

  mcp.registerTool(
    "subscriptions",
    { description: "Returns the subscribed resource URIs as JSON text and as structuredContent {uris}." },
    () => {
      const uris = [...subscribed]
      return json({ uris }, uris)
    }
  )
}

/** Registers `add_tool`, `remove_tool`, `notify`, `log`, `update_resource` and `subscriptions` on `mcp`. */
export const registerNotificationTools = (mcp: McpServer): void => {
  registerToolChanges(mcp)
  registerNotify(mcp)
  registerLog(mcp)
  registerSubscriptions(mcp)
}
