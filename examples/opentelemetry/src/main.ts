/**
 * OpenTelemetry: one pooled MCP server, its metrics on a Prometheus scrape endpoint on
 * 127.0.0.1 and its spans on the console. Scrapes its own endpoint, checks the figures,
 * exits 0 and leaves no process behind.
 *
 * Run it with `pnpm --filter @mcp-pool/example-opentelemetry start` after `pnpm run build`.
 */
import { createInstrumentedMcpConnectionManager } from "@mcp-pool/opentelemetry"
import { descendantsOf, fixtureStdioConfig } from "@mcp-pool/test-servers"
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus"
import { ConsoleSpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { createServer } from "node:net"

const CALLS = 20

/** A port that was free a moment ago (the endpoint could also use a fixed one, e.g. 9464). */
const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const probe = createServer()
    probe.once("error", reject)
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address()
      probe.close(() => resolve(typeof address === "object" && address !== null ? address.port : 9464))
    })
  })

/** The value of `name{...labels...}` in a Prometheus text exposition. */
const sample = (text: string, name: string, labels: ReadonlyArray<string>): number | undefined => {
  const line = text.split("\n").find((l) => l.startsWith(`${name}{`) && labels.every((label) => l.includes(label)))
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1))
}

const main = async () => {
  const port = await freePort()
  // Metrics: pulled by Prometheus from http://127.0.0.1:<port>/metrics.
  const prometheus = new PrometheusExporter({ host: "127.0.0.1", port })
  // Spans: printed as they end.
  const console = new SimpleSpanProcessor(new ConsoleSpanExporter())

  const manager = await createInstrumentedMcpConnectionManager(
    { servers: { fixture: fixtureStdioConfig() }, defaults: { minConnections: 2, maxConnections: 4 } },
    { serviceName: "mcp-pool-example", exportersFromEnv: false, metricReaders: [prometheus], spanProcessors: [console] }
  )
  let scrape = ""
  try {
    const tools = manager.tools("fixture")
    await Promise.all(
      Array.from({ length: CALLS }, (_, i) => tools.callTool({ name: "add", arguments: { a: i, b: 1 } }))
    )
    const failed = await tools.callTool({ name: "fail" }).then(
      () => false,
      () => true
    )
    if (!failed) throw new Error("the fail tool did not fail")

    const response = await fetch(`http://127.0.0.1:${port}/metrics`)
    scrape = await response.text()
    globalThis.console.log(`\nscraped http://127.0.0.1:${port}/metrics (pool lines):`)
    for (const line of scrape.split("\n")) {
      if (/^(mcp_pool_|db_client_connection_(count|limit|idle)|mcp_client_operation_duration_count)/.test(line)) {
        globalThis.console.log(`  ${line}`)
      }
    }
  } finally {
    await manager.close()
  }

  const pool = 'db_client_connection_pool_name="fixture"'
  const checks: Array<[string, number | undefined, number]> = [
    ["mcp_pool_requests_total", sample(scrape, "mcp_pool_requests_total", [pool]), CALLS + 1],
    ["mcp_pool_errors_total", sample(scrape, "mcp_pool_errors_total", [pool]), 1],
    [
      "mcp_client_operation_duration_count (add)",
      sample(scrape, "mcp_client_operation_duration_count", [pool, 'gen_ai_tool_name="add"']),
      CALLS
    ],
    ["db_client_connection_limit", sample(scrape, "db_client_connection_limit", [pool]), 4]
  ]
  for (const [what, actual, expected] of checks) {
    if (actual !== expected) throw new Error(`${what} is ${String(actual)}, expected ${expected}`)
  }
  const left = await descendantsOf(process.pid)
  if (left.length > 0) throw new Error(`processes left behind: ${left.map((p) => p.command).join(", ")}`)
  globalThis.console.log(`\n${CALLS + 1} calls traced and scraped; metrics check out; every server process ended.`)
}

main().catch((error: unknown) => {
  globalThis.console.error(error instanceof Error ? error.message : error)
  process.exitCode = 1
})
