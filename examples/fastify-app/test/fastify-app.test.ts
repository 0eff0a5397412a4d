import { fileURLToPath } from "node:url"
import { checkMonitoredApp, startExample } from "@mcp-pool/test-servers"
import Fastify from "fastify"
import { describe, expect, it, vi } from "vitest"
import { errorHandler } from "../src/errors.ts"

const repositoryRoot = fileURLToPath(new URL("../../..", import.meta.url))

/** Checks that an answer is JSON `{ error }` with `status`, and that it shows no stack and no file path. */
const expectJsonError = (answer: { status: number; contentType: string; text: string }, status: number): string => {
  expect(answer.status, answer.text).toBe(status)
  expect(answer.contentType).toMatch(/^application\/json/)
  expect(JSON.parse(answer.text)).toEqual({ error: expect.any(String) })
  expect(answer.text).not.toMatch(/stack|node_modules|\bat .+:\d+:\d+/)
  expect(answer.text).not.toContain(repositoryRoot)
  return answer.text
}

const answerOf = async (response: Response) => ({
  status: response.status,
  contentType: response.headers.get("content-type") ?? "",
  text: await response.text()
})

describe("examples/fastify-app", () => {
  it("serves its own routes and every monitoring route, and stops on SIGTERM leaving no MCP process", async () => {
    const app = await startExample({
      cwd: fileURLToPath(new URL("..", import.meta.url)),
      script: "src/main.ts",
      env: { PORT: "0" }
    })
    const { answers, output } = await checkMonitoredApp(app, "fastify-app")
    expect(answers).toHaveLength(10)
    expect(output).toContain("fastify-app stopped; MCP servers closed")
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
      expect(expectJsonError(await answerOf(malformed), 400)).toMatch(/JSON/)
      expectJsonError(await answerOf(await fetch(`${app.url}/no/such/route`)), 404)
      expectJsonError(await answerOf(await fetch(`${app.url}/no/such/route`, { method: "POST", body: "{}" })), 404)
      expect(await app.stop("SIGTERM")).toBe(0)
      // The client's mistakes are answered, not logged as failures.
      expect(app.output()).not.toMatch(/request failed/)
    } finally {
      await app.stop("SIGKILL", 5_000).catch(() => undefined)
    }
  })

  it("answers an unexpected error as a bare JSON 500 and logs it", async () => {
    const app = Fastify()
    app.get("/fails", async () => {
      throw new Error(`ENOENT: no such file or directory, open '${repositoryRoot}secret.json'`)
    })
    app.setErrorHandler(errorHandler)
    const logged = vi.spyOn(console, "error").mockImplementation(() => undefined)
    try {
      const response = await app.inject({ method: "GET", url: "/fails" })
      const answer = {
        status: response.statusCode,
        contentType: String(response.headers["content-type"]),
        text: response.body
      }
      expect(expectJsonError(answer, 500)).toBe(JSON.stringify({ error: "Internal Server Error" }))
      expect(logged).toHaveBeenCalledOnce()
    } finally {
      logged.mockRestore()
      await app.close()
    }
  })
})
