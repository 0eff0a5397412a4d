import { once } from "node:events"
import { fileURLToPath } from "node:url"
import { checkMonitoredApp, startExample } from "@mcp-pool/test-servers"
import express from "express"
import { describe, expect, it, vi } from "vitest"
import { errorHandler } from "../src/errors.ts"

const repositoryRoot = fileURLToPath(new URL("../../..", import.meta.url))

/** Checks that an answer is JSON `{ error }` with `status`, and that it shows no stack and no file path. */
const expectJsonError = async (response: Response, status: number): Promise<string> => {
  const text = await response.text()
  expect(response.status, text).toBe(status)
  expect(response.headers.get("content-type")).toMatch(/^application\/json/)
  expect(JSON.parse(text)).toEqual({ error: expect.any(String) })
  expect(text).not.toMatch(/stack|node_modules|\bat .+:\d+:\d+/)
  expect(text).not.toContain(repositoryRoot)
  return text
}

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

  it("answers a body that is not JSON and an unknown route as JSON errors, without a stack", async () => {
    const app = await startExample({
      cwd: fileURLToPath(new URL("..", import.meta.url)),
      script: "src/main.ts",
      env: { PORT: "0" }
    })
    try {
      const malformed = await fetch(`${app.url}/tools/fixture/echo`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{not json"
      })
      expect(await expectJsonError(malformed, 400)).toMatch(/JSON/)
      await expectJsonError(await fetch(`${app.url}/no/such/route`), 404)
      await expectJsonError(await fetch(`${app.url}/no/such/route`, { method: "POST", body: "{}" }), 404)
      expect(await app.stop("SIGTERM")).toBe(0)
      // The client's mistakes are answered, not logged as failures.
      expect(app.output()).not.toMatch(/SyntaxError|request failed/)
    } finally {
      await app.stop("SIGKILL", 5_000).catch(() => undefined)
    }
  })

  it("answers an unexpected error as a bare JSON 500 and logs it", async () => {
    const app = express()
    app.get("/fails", () => {
      throw new Error(`ENOENT: no such file or directory, open '${repositoryRoot}secret.json'`)
    })
    app.use(errorHandler)
    const server = app.listen(0, "127.0.0.1")
    const logged = vi.spyOn(console, "error").mockImplementation(() => undefined)
    try {
      await once(server, "listening")
      const address = server.address()
      if (typeof address !== "object" || address === null) throw new Error(`not listening on a port: ${address}`)
      const response = await fetch(`http://127.0.0.1:${address.port}/fails`)
      expect(await expectJsonError(response, 500)).toBe(JSON.stringify({ error: "Internal Server Error" }))
      expect(logged).toHaveBeenCalledOnce()
    } finally {
      logged.mockRestore()
      server.close()
      server.closeAllConnections()
    }
  })
})
