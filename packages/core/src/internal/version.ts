/**
 * The name and version this library announces to MCP servers in the handshake.
 */
export const clientInfo = { name: "mcp-pool", version: "0.1.0" } as const
