/**
 * The JSON answers of the monitoring API as effect Schemas: the one definition the answers'
 * types are derived from, and what tests and the docs check example answers against.
 */
import * as Schema from "effect/Schema"

const StatusSchema = Schema.Literals(["healthy", "warning", "critical"])
const SeveritySchema = Schema.Literals(["info", "warning", "critical"])

/**
 * The figures of one pool.
 *
 * @since 0.1.0
 * @category schemas
 */
export const PoolMetricsSchema = Schema.Struct({
  server_name: Schema.String,
  status: StatusSchema,
  total_connections: Schema.Number,
  available_connections: Schema.Number,
  in_use_connections: Schema.Number,
  pending_requests: Schema.Number,
  circuit_breaker_state: Schema.Literals(["closed", "open", "half_open"]),
  pool_hits: Schema.Number,
  pool_misses: Schema.Number,
  hit_rate: Schema.Number,
  connection_errors: Schema.Number,
  health_check_failures: Schema.Number,
  total_requests: Schema.Number,
  total_errors: Schema.Number,
  utilization: Schema.Number
})

/**
 * The answer of one health check.
 *
 * @since 0.1.0
 * @category schemas
 */
export const HealthCheckSchema = Schema.Struct({
  server_name: Schema.String,
  healthy: Schema.Boolean,
  checked: Schema.Number,
  failed: Schema.Number,
  duration_ms: Schema.Number,
  reason: Schema.optionalKey(Schema.String)
})

/**
 * The body of every route, by route, and of errors.
 *
 * @since 0.1.0
 * @category schemas
 */
export const schemas = {
  status: Schema.Struct({
    status: StatusSchema,
    timestamp: Schema.String,
    total_pools: Schema.Number,
    pools: Schema.Record(Schema.String, StatusSchema)
  }),
  pools: Schema.Struct({ pools: Schema.Array(PoolMetricsSchema) }),
  pool: Schema.Struct({
    ...PoolMetricsSchema.fields,
    config: Schema.Record(Schema.String, Schema.Unknown),
    connections: Schema.Array(
      Schema.Struct({
        id: Schema.Number,
        pid: Schema.NullOr(Schema.Number),
        session_id: Schema.NullOr(Schema.String),
        in_flight: Schema.Number,
        leases: Schema.Number,
        created_at: Schema.String,
        last_used_at: Schema.String,
        alive: Schema.Boolean,
        concurrency_limit: Schema.Number
      })
    )
  }),
  alerts: Schema.Struct({
    alerts: Schema.Array(
      Schema.Struct({
        id: Schema.Number,
        type: Schema.Literals(["pool_exhaustion", "circuit_breaker_open", "high_error_rate", "health_check_failure"]),
        severity: SeveritySchema,
        server_name: Schema.String,
        message: Schema.String,
        timestamp: Schema.String
      })
    )
  }),
  servers: Schema.Struct({
    servers: Schema.Array(
      Schema.Struct({
        name: Schema.String,
        transport: Schema.Literals(["stdio", "streamable-http", "sse"]),
        pooled: Schema.Boolean
      })
    )
  }),
  summary: Schema.Struct({
    pool_metrics: Schema.Array(PoolMetricsSchema),
    global_metrics: Schema.Struct({
      total_pools: Schema.Number,
      total_requests: Schema.Number,
      total_errors: Schema.Number
    })
  }),
  config: Schema.Struct({
    defaults: Schema.Record(Schema.String, Schema.Union([Schema.Number, Schema.String])),
    servers: Schema.Record(Schema.String, Schema.Record(Schema.String, Schema.Unknown))
  }),
  healthCheck: HealthCheckSchema,
  error: Schema.Struct({ error: Schema.String })
} as const
