/**
 * mcp-pool: pools of live MCP client connections, one pool per configured server.
 *
 * @since 0.1.0
 */
export * as Errors from "./Errors.js"
