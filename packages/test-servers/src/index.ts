/**
 * Fixture MCP servers shared by tests, benchmarks and examples: the fixture `McpServer`, its stdio bin,
 * in-process and child-process HTTP servers, an npx-style wrapper and the reference server-everything.
 */
export * from "./server.js"
export * from "./http.js"
export * from "./spawn.js"
export * from "./paths.js"
export * from "./processes.js"
export * from "./examples.js"
