/**
 * mcp-pool: pools of live MCP client connections, one pool per configured server, with a
 * Promise front door for code that does not use Effect.
 *
 * @since 0.1.0
 */
export * as Alerts from "./Alerts.js"
export * as CircuitBreaker from "./CircuitBreaker.js"
export * as Connection from "./Connection.js"
export * as Errors from "./Errors.js"
export * as MCPConnectionManager from "./MCPConnectionManager.js"
export * as MCPConnectionPool from "./MCPConnectionPool.js"
export * as MCPHealthMonitor from "./MCPHealthMonitor.js"
export * as Metrics from "./Metrics.js"
export * as MonitoringApi from "./MonitoringApi.js"
export * as Notifications from "./Notifications.js"
export * as PoolConfig from "./PoolConfig.js"
export * as PooledMCPTools from "./PooledMCPTools.js"
export * as ServerConfig from "./ServerConfig.js"
export * as ServerRequests from "./ServerRequests.js"
export * as Telemetry from "./Telemetry.js"

export {
  MCPAborted,
  MCPCircuitOpen,
  MCPConfigError,
  MCPConnectionError,
  MCPHealthCheckError,
  MCPInvalidQuery,
  MCPManagerClosed,
  MCPPoolExhausted,
  MCPRequestError,
  MCPServerNotFound,
  MCPTimeout
} from "./Errors.js"
export type { PoolDetails } from "./Metrics.js"
export type { LogEntry, MCPConnectionManagerPromise, PromiseLogLevel, PromiseManagerOptions } from "./PromiseApi.js"
export {
  createMcpConnectionManager,
  createPooledMcpTools,
  getMcpConnectionManager,
  shutdownMcpConnectionManager,
  startMcpMonitoring,
  stopMcpMonitoring
} from "./PromiseApi.js"
