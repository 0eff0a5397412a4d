import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as ServerConfig from "../src/ServerConfig.js"

let dir = ""
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "mcp-pool-config-"))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

const file = async (name: string, text: string) => {
  const path = join(dir, name)
  await writeFile(path, text)
  return path
}

const env = { HOME_DIR: "/home/me", TOKEN: "tok-123" }
const parse = (json: unknown) => ServerConfig.parse(json, { source: "mcp.json", env })
const failure = (result: Result.Result<unknown, { readonly message: string }>): string =>
  Result.isFailure(result) ? result.failure.message : "no failure"

describe("ServerConfig", () => {
  it("reads stdio, http, streamable-http and sse servers with ${VAR} expansion and pool blocks", () => {
    const result = parse({
      mcpServers: {
        files: {
          command: "npx",
          args: ["-y", "server-files", "${HOME_DIR}/docs", "${env:HOME_DIR}"],
          env: { API_KEY: "${TOKEN}", MODE: "${UNSET_MODE:-fast}" },
          pool: { maxConnections: 3 }
        },
        search: { type: "http", url: "https://search.example.com/mcp", headers: { Authorization: "Bearer ${TOKEN}" } },
        modern: { type: "streamable-http", url: "http://127.0.0.1:3000/mcp" },
        bare: { url: "http://127.0.0.1:3001/mcp" },
        legacy: { type: "sse", url: "http://127.0.0.1:3002/sse", description: "other tools' keys are ignored" }
      }
    })
    expect(Result.isSuccess(result)).toBe(true)
    const servers = Result.isSuccess(result) ? result.success : []
    expect(servers.map((s) => [s.name, s.transport])).toEqual([
      ["files", "stdio"],
      ["search", "streamable-http"],
      ["modern", "streamable-http"],
      ["bare", "streamable-http"],
      ["legacy", "sse"]
    ])
    expect(servers[0]).toEqual({
      name: "files",
      transport: "stdio",
      command: "npx",
      args: ["-y", "server-files", "/home/me/docs", "/home/me"],
      env: { API_KEY: "tok-123", MODE: "fast" },
      inheritEnv: undefined,
      cwd: undefined,
      pool: { maxConnections: 3 },
      // Where it was configured, for errors about its settings found after parsing.
      origin: { source: "mcp.json", poolPath: "mcpServers.files.pool" }
    })
    expect(servers[1]).toMatchObject({ headers: { Authorization: "Bearer tok-123" } })
  })

  it("reads VS Code's .vscode/mcp.json shape", () => {
    const result = parse({
      inputs: [],
      servers: {
        a: { type: "stdio", command: "node", args: ["a.js"] },
        b: { type: "http", url: "http://127.0.0.1/mcp" }
      }
    })
    expect(Result.isSuccess(result) && result.success.map((s) => s.transport)).toEqual(["stdio", "streamable-http"])
  })

  it("errors name the source, the JSON path and what is wrong", () => {
    expect(failure(parse({ mcpServers: { gh: { command: "x", args: ["ok", 3] } } }))).toContain(
      "mcp.json at mcpServers.gh.args[1]"
    )
    expect(failure(parse({ mcpServers: { gh: { command: "x", env: { KEY: "${NOT_SET_ANYWHERE}" } } } }))).toContain(
      "environment variable NOT_SET_ANYWHERE is not set"
    )
    expect(failure(parse({ mcpServers: { gh: { type: "http", url: "ftp://x" } } }))).toContain("http:// or https://")
    expect(failure(parse({ mcpServers: { gh: { type: "websocket", url: "http://x" } } }))).toContain(
      "mcpServers.gh.type"
    )
    expect(failure(parse({ mcpServers: { gh: {} } }))).toContain(`needs a "command"`)
    expect(failure(parse({ mcpServers: { gh: { command: "x", pool: { maxConections: 2 } } } }))).toContain(
      "mcpServers.gh.pool.maxConections"
    )
    expect(failure(parse({ other: {} }))).toContain(`"mcpServers"`)
  })

  it.effect("loadFile: a malformed file names the file, the line and the column; a missing file names the path", () =>
    Effect.gen(function* () {
      const broken = yield* Effect.promise(() =>
        file("broken.json", '{\n  "mcpServers": {\n    "a": { "command": }\n  }\n}')
      )
      const error = yield* Effect.flip(ServerConfig.loadFile(broken, env))
      expect(error._tag).toBe("MCPConfigError")
      expect(error.message).toContain(broken)
      expect(error.message).toMatch(/line 3, column \d+/)
      const missing = yield* Effect.flip(ServerConfig.loadFile(join(dir, "nope.json"), env))
      expect(missing.message).toContain("nope.json")
      expect(missing.message).toContain("ENOENT")
      const good = yield* Effect.promise(() =>
        file("good.json", JSON.stringify({ mcpServers: { a: { command: "node" } } }))
      )
      expect((yield* ServerConfig.loadFile(good, env)).map((s) => s.name)).toEqual(["a"])
    })
  )

  it("redacts env values, header values, URL credentials, query values and secret arguments", () => {
    const result = parse({
      mcpServers: {
        local: {
          command: "server",
          args: ["--token", "abc", "--api-key=xyz", "--verbose"],
          env: { API_KEY: "s3cret-value" }
        },
        remote: {
          type: "http",
          url: "https://user:pw@host.example/x?token=abc&region=eu",
          headers: { Authorization: "Bearer s3cret-value" },
          pool: { maxConnections: 3, requestTimeout: 5 }
        }
      }
    })
    const servers = Result.isSuccess(result) ? result.success : []
    const redacted = servers.map(ServerConfig.redact)
    expect(redacted[0]).toEqual({
      name: "local",
      transport: "stdio",
      command: "server",
      args: ["--token", "[REDACTED]", "--api-key=[REDACTED]", "--verbose"],
      env: { API_KEY: "[REDACTED]" },
      pool: {}
    })
    // The pool block has the API's snake_case names.
    expect(redacted[1]?.["pool"]).toEqual({ max_connections: 3, request_timeout: 5 })
    const text = JSON.stringify(redacted)
    for (const secret of ["s3cret-value", "pw@", "user:", "token=abc", "xyz"]) expect(text).not.toContain(secret)
    expect(text).toContain("Authorization")
    expect(text).toContain("region=[REDACTED]")
  })

  it("defaultConfigPath: MCP_CONFIG_PATH, else ./.mcp.json", () => {
    expect(ServerConfig.defaultConfigPath({ MCP_CONFIG_PATH: "/etc/mcp.json" }, "/app")).toBe("/etc/mcp.json")
    expect(ServerConfig.defaultConfigPath({}, "/app")).toBe("/app/.mcp.json")
  })

  it("scrubber removes every secret of a server from a text; connectionTarget moves URL credentials to a header", () => {
    const servers = ServerConfig.fromEntries(
      {
        remote: {
          type: "http",
          url: "http://us%40er:pa55word@127.0.0.1:9/mcp?token=t0ken-value&x=1",
          headers: { "X-Api-Key": "h3ader-value" }
        },
        local: { command: "node", env: { API_KEY: "s3cret value", SHORT: "ab" } }
      },
      { source: "test", env: {} }
    )
    if (Result.isFailure(servers)) throw servers.failure
    const [remote, local] = servers.success
    if (remote === undefined || local === undefined) throw new Error("two servers expected")
    const scrubRemote = ServerConfig.scrubber(remote)
    expect(
      scrubRemote(
        "fetch http://us%40er:pa55word@127.0.0.1:9/mcp?token=t0ken-value&x=1 failed; key h3ader-value; pa55word again"
      )
    ).toBe(
      "fetch http://[REDACTED]:[REDACTED]@127.0.0.1:9/mcp?token=[REDACTED]&x=[REDACTED] failed; key [REDACTED]; [REDACTED] again"
    )
    const scrubLocal = ServerConfig.scrubber(local)
    expect(scrubLocal("env: s3cret value / s3cret%20value / ab")).toBe("env: [REDACTED] / [REDACTED] / ab")

    const target = ServerConfig.connectionTarget("http://us%40er:pa55word@127.0.0.1:9/mcp?x=1", {})
    expect(target.url.toString()).toBe("http://127.0.0.1:9/mcp?x=1")
    expect(target.headers).toEqual({ Authorization: `Basic ${Buffer.from("us@er:pa55word").toString("base64")}` })
    // An explicit Authorization header wins.
    expect(ServerConfig.connectionTarget("http://u:p@h/", { authorization: "Bearer t" }).headers).toEqual({
      authorization: "Bearer t"
    })
  })
})
