import { fileURLToPath } from "node:url"
import { checkMonitoredApp, startExample } from "@mcp-pool/test-servers"
import { describe, expect, it } from "vitest"

describe("examples/express-app", () => {
  it("serves its own routes and every monitoring route, and stops on SIGTERM leaving no MCP process", async () => {
    const app = await startExample({
      cwd: fileURLToPath(new URL("..", import.meta.url)),
      script: "src/main.ts",
      env: { PORT: "0" }
    })
    const { answers, output } = await checkMonitoredApp(app, "express-app")
    expect(answers).toHaveLength(10)
    expect(output).toContain("express-app stopped; MCP servers closed")
  })
})
