import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { describe, expect, it } from "vitest"

const run = promisify(execFile)

describe("examples/opentelemetry", () => {
  it("serves the pool's metrics to a Prometheus scrape, prints spans, checks itself and exits 0", async () => {
    const cwd = fileURLToPath(new URL("..", import.meta.url))
    const { stdout } = await run(process.execPath, ["src/main.ts"], { cwd, timeout: 60_000 })
    expect(stdout).toMatch(/mcp_pool_requests_total\{[^}]*db_client_connection_pool_name="fixture"[^}]*\} 21/)
    expect(stdout).toContain("tools/call add")
    expect(stdout).toContain("21 calls traced and scraped; metrics check out; every server process ended.")
  })
})
