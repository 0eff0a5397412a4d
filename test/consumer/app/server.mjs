// A minimal stdio MCP server, written as a user of the SDK would: one tool that echoes its
// text with the server's process id, so the program can check both the answer and the process.
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js"
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js"
import * as z from "zod"

const server = new McpServer({ name: "consumer-echo", version: "1.0.0" })
server.registerTool(
  "echo",
  { description: "Echoes `text`, with the server's process id.", inputSchema: { text: z.string() } },
  async ({ text }) => ({ content: [{ type: "text", text: JSON.stringify({ text, pid: process.pid }) }] })
)
await server.connect(new StdioServerTransport())
