import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { describe, expect, it } from "vitest"

const run = promisify(execFile)

describe("examples/quickstart", () => {
  it("compares warm pools with a new connection per call, runs a burst per pool and exits 0 leaving no process", async () => {
    const cwd = fileURLToPath(new URL("..", import.meta.url))
    const { stdout, stderr } = await run(process.execPath, ["src/main.ts"], { cwd, timeout: 60_000 })
    const servers = ["fixture-stdio", "fixture-http", "everything"]
    for (const server of servers) {
      // A pooled row and a baseline row per server, in a table of the demo's own (no `(index)` column).
      expect(stdout).toMatch(new RegExp(`│ ${server} +│ pool +│ +\\d+ │`))
      expect(stdout).toMatch(new RegExp(`│ ${server} +│ new connection per call +│ +\\d+ │ .* │ +[\\d,.]+x │`))
      expect(stdout).toMatch(new RegExp(`[\\d,.]+x \\(${server}\\)`))
    }
    expect(stdout).toContain("A call through the warm pool is faster at p50 than one on a new connection:")
    expect(stdout).toMatch(/^fixture-http is a Streamable HTTP server in another process: each call is an HTTP POST/m)
    expect(stdout).toMatch(/hit rate/)
    expect(stdout).not.toContain("(index)")
    // The burst's alerts are printed in their own section, after every table.
    const lastTable = stdout.lastIndexOf("└")
    expect(stdout.indexOf("The manager's log")).toBeGreaterThan(lastTable)
    const firstAlert = stdout.indexOf("Alert ")
    if (firstAlert !== -1) expect(firstAlert).toBeGreaterThan(lastTable)
    expect(stderr).not.toContain("Alert ")
    expect(stdout).toMatch(/\n\d+ calls done; every server process ended\.\n$/)
  })
})
