import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { describe, expect, it } from "vitest"

const run = promisify(execFile)

describe("examples/quickstart", () => {
  it("warms three pools, runs 900 calls, prints a table per pool and exits 0 leaving no process", async () => {
    const cwd = fileURLToPath(new URL("..", import.meta.url))
    const { stdout } = await run(process.execPath, ["src/main.ts"], { cwd, timeout: 60_000 })
    for (const pool of ["fixture-stdio", "fixture-http", "everything"]) expect(stdout).toContain(pool)
    expect(stdout).toMatch(/hit rate/)
    expect(stdout).toContain("900 calls done; every server process ended.")
  })
})
