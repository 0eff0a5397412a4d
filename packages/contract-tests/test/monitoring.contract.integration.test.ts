import { createServer, type IncomingHttpHeaders } from "node:http"
import { type AddressInfo, createServer as createNetServer } from "node:net"
import { format } from "node:util"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { createMcpConnectionManager } from "@mcp-pool/core"
import { MCPConnectionManager, type ManagerOptions } from "@mcp-pool/core/MCPConnectionManager"
import * as MonitoringApi from "@mcp-pool/core/MonitoringApi"
import { mcpMonitoringRouter } from "@mcp-pool/express"
import { mcpPool } from "@mcp-pool/fastify"
import { descendantsOf, fixtureStdioConfig, waitFor } from "@mcp-pool/test-servers"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServer from "effect/http/HttpServer"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import express from "express"
import Fastify from "fastify"
import { afterAll, beforeAll, describe, expect, it, type MockInstance, vi } from "vitest"

/** Secrets in the configuration that must never appear in an answer. */
const secrets = ["s3cret-value", "pa55word", "t0ken-value", "h3ader-value"]

/** A port on 127.0.0.1 that nothing listens on: a listener took it from the system, and was closed. */
const unusedPort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createNetServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo
      server.close(() => resolve(port))
    })
  })

const downPort = await unusedPort()

/**
 * The "remote" pool is down on purpose: what the managers log about it (failed connects, a
 * failed health check) is kept here instead of printed; any other line is printed as usual.
 */
const downPoolLines: Array<string> = []
let consoleLog: MockInstance<typeof console.log> | undefined
beforeAll(() => {
  const print = console.log.bind(console)
  consoleLog = vi.spyOn(console, "log").mockImplementation((...args: Array<unknown>) => {
    const line = format(...args)
    if (line.includes('"remote"')) downPoolLines.push(line)
    else print(...args)
  })
})
afterAll(() => {
  consoleLog?.mockRestore()
})

const managerOptions: ManagerOptions = {
  servers: {
    fx: { ...fixtureStdioConfig(), env: { API_KEY: "s3cret-value" } },
    // Nothing listens on that port: this pool is down.
    remote: {
      type: "http",
      url: `http://user:pa55word@127.0.0.1:${downPort}/mcp?token=t0ken-value`,
      headers: { Authorization: "Bearer h3ader-value" }
    }
  },
  defaults: { minConnections: 1, maxConnections: 2, retryAttempts: 0, shutdownGracePeriod: 0.5, connectionTimeout: 5 }
}

interface Started {
  readonly baseUrl: string
  readonly close: () => Promise<void>
}

interface FrontEndOptions {
  readonly prefix?: string
  readonly healthCheckRoute?: boolean
  /** Requests must carry `Authorization: Bearer <token>`: none is 401, another is 403. */
  readonly token?: string
}

const decide = (token: string | undefined, header: string | undefined): MonitoringApi.AuthResult => {
  if (token === undefined) return true
  if (header === undefined) return false
  return header === `Bearer ${token}` ? true : { status: 403, error: "forbidden: wrong token" }
}

const authorization = (headers: IncomingHttpHeaders | Record<string, string | undefined>) => {
  const value = headers["authorization"]
  return typeof value === "string" ? value : undefined
}

const frontEnds: ReadonlyArray<{ readonly name: string; readonly start: (o: FrontEndOptions) => Promise<Started> }> = [
  {
    name: "effect HttpRouter (@effect/platform-node)",
    start: async (o) => {
      const app = HttpRouter.serve(
        MonitoringApi.layer({
          prefix: o.prefix,
          healthCheckRoute: o.healthCheckRoute,
          auth: (request) => decide(o.token, authorization(request.headers))
        }),
        { disableLogger: true, disableListenLog: true }
      ).pipe(
        Layer.provideMerge(MCPConnectionManager.layer(managerOptions)),
        Layer.provideMerge(NodeHttpServer.layer(() => createServer(), { port: 0, host: "127.0.0.1" }))
      )
      const scope = Effect.runSync(Scope.make())
      const context = await Effect.runPromise(Layer.build(app).pipe(Scope.provide(scope)))
      const address = Context.get(context, HttpServer.HttpServer).address
      if (address._tag === "UnixPathAddress") throw new Error("expected a TCP address")
      return {
        baseUrl: `http://127.0.0.1:${address.port}`,
        close: () => Effect.runPromise(Scope.close(scope, Exit.void))
      }
    }
  },
  {
    name: "Express (@mcp-pool/express)",
    start: async (o) => {
      const manager = await createMcpConnectionManager(managerOptions)
      const app = express()
      app.get("/app/own-route", (_req, res) => {
        res.json({ own: true })
      })
      app.use(
        mcpMonitoringRouter(manager, {
          prefix: o.prefix,
          healthCheckRoute: o.healthCheckRoute,
          auth: (req) => decide(o.token, req.get("authorization"))
        })
      )
      const server = app.listen(0, "127.0.0.1")
      await new Promise<void>((resolve) => server.once("listening", resolve))
      const { port } = server.address() as AddressInfo
      return {
        baseUrl: `http://127.0.0.1:${port}`,
        close: async () => {
          await new Promise<void>((resolve) => {
            server.close(() => resolve())
            server.closeIdleConnections()
          })
          await manager.close()
        }
      }
    }
  },
  {
    name: "Fastify (@mcp-pool/fastify)",
    start: async (o) => {
      const app = Fastify()
      await app.register(mcpPool, {
        ...managerOptions,
        ...(o.prefix === undefined ? {} : { prefix: o.prefix }),
        healthCheckRoute: o.healthCheckRoute,
        auth: (request) => decide(o.token, authorization(request.headers))
      })
      const address = await app.listen({ port: 0, host: "127.0.0.1" })
      return { baseUrl: address, close: () => app.close() }
    }
  }
]

interface Answer {
  readonly status: number
  readonly body: unknown
  readonly text: string
}

const request = async (url: string, init: RequestInit = {}): Promise<Answer> => {
  const response = await fetch(url, init)
  const text = await response.text()
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    body = text
  }
  return { status: response.status, body, text }
}

const exact = { onExcessProperty: "error" } as const

for (const frontEnd of frontEnds) {
  describe(`monitoring API contract: ${frontEnd.name}`, () => {
    let started: Started
    const answers: Array<Answer> = []
    const get = async (path: string, init: RequestInit = {}) => {
      const answer = await request(`${started.baseUrl}/api/v1/mcp${path}`, {
        ...init,
        headers: { authorization: "Bearer token", ...init.headers }
      })
      answers.push(answer)
      return answer
    }

    beforeAll(async () => {
      started = await frontEnd.start({ token: "token" })
    })
    afterAll(async () => {
      await started.close()
    })

    it("GET /status: overall and per-pool status", async () => {
      const { status, body } = await get("/status")
      expect(status).toBe(200)
      const decoded = Schema.decodeUnknownSync(MonitoringApi.schemas.status, exact)(body)
      expect(decoded).toMatchObject({
        status: "critical",
        total_pools: 2,
        pools: { fx: "healthy", remote: "critical" }
      })
    })

    it("GET /pools and /pools/{name}: PoolMetrics, redacted config and connections", async () => {
      const pools = await get("/pools")
      expect(pools.status).toBe(200)
      const decoded = Schema.decodeUnknownSync(MonitoringApi.schemas.pools, exact)(pools.body)
      expect(decoded.pools.map((p) => p.server_name)).toEqual(["fx", "remote"])

      const fx = await get("/pools/fx")
      expect(fx.status).toBe(200)
      const details = Schema.decodeUnknownSync(MonitoringApi.schemas.pool, exact)(fx.body)
      expect(details.connections.length).toBeGreaterThanOrEqual(1)
      expect(details.connections[0]?.pid).toEqual(expect.any(Number))
      expect(JSON.stringify(details.config)).toContain("API_KEY")

      const missing = await get("/pools/nope")
      expect(missing.status).toBe(404)
      const error = Schema.decodeUnknownSync(MonitoringApi.schemas.error, exact)(missing.body)
      expect(error.error).toContain('"nope"')
    })

    it("GET /alerts validates severity and limit (400 naming the parameter)", async () => {
      const all = await get("/alerts")
      expect(all.status).toBe(200)
      Schema.decodeUnknownSync(MonitoringApi.schemas.alerts, exact)(all.body)
      expect((await get("/alerts?severity=warning&limit=5")).status).toBe(200)
      for (const [query, parameter] of [
        ["severity=urgent", "severity"],
        ["limit=0", "limit"],
        ["limit=1001", "limit"],
        ["limit=ten", "limit"],
        ["limit=1&limit=2", "limit"]
      ] as const) {
        const answer = await get(`/alerts?${query}`)
        expect(answer.status, query).toBe(400)
        expect(Schema.decodeUnknownSync(MonitoringApi.schemas.error, exact)(answer.body).error).toContain(parameter)
      }
    })

    it("GET /servers, /metrics/summary and /config", async () => {
      const servers = await get("/servers")
      expect(servers.status).toBe(200)
      expect(Schema.decodeUnknownSync(MonitoringApi.schemas.servers, exact)(servers.body).servers).toEqual([
        { name: "fx", transport: "stdio", pooled: true },
        { name: "remote", transport: "streamable-http", pooled: true }
      ])
      const summary = await get("/metrics/summary")
      expect(summary.status).toBe(200)
      expect(
        Schema.decodeUnknownSync(MonitoringApi.schemas.summary, exact)(summary.body).global_metrics.total_pools
      ).toBe(2)
      const config = await get("/config")
      expect(config.status).toBe(200)
      const decoded = Schema.decodeUnknownSync(MonitoringApi.schemas.config, exact)(config.body)
      expect(Object.keys(decoded.servers)).toEqual(["fx", "remote"])
      expect(config.text).toContain("Authorization")
    })

    it("POST /pools/{name}/health-check: 200 with healthy true or false, 404 for an unknown server", async () => {
      const ok = await get("/pools/fx/health-check", { method: "POST" })
      expect(ok.status).toBe(200)
      expect(Schema.decodeUnknownSync(MonitoringApi.schemas.healthCheck, exact)(ok.body)).toMatchObject({
        server_name: "fx",
        healthy: true,
        failed: 0
      })
      const down = await get("/pools/remote/health-check", { method: "POST" })
      expect(down.status).toBe(200)
      expect(down.body).toMatchObject({ server_name: "remote", healthy: false })
      expect((await get("/pools/nope/health-check", { method: "POST" })).status).toBe(404)
    })

    it("unknown routes are 404 and wrong methods 405, with a JSON error", async () => {
      const unknown = await get("/nothing-here")
      expect(unknown.status).toBe(404)
      Schema.decodeUnknownSync(MonitoringApi.schemas.error, exact)(unknown.body)
      const wrong = await get("/pools/fx/health-check")
      expect(wrong.status).toBe(405)
      expect((await get("/status", { method: "DELETE" })).status).toBe(405)
    })

    it("the auth hook: no credentials 401, wrong ones 403, and nothing else in the answer", async () => {
      const none = await request(`${started.baseUrl}/api/v1/mcp/config`)
      expect(none.status).toBe(401)
      expect(none.body).toEqual({ error: "unauthorized" })
      const wrong = await request(`${started.baseUrl}/api/v1/mcp/pools/fx`, { headers: { authorization: "Bearer x" } })
      expect(wrong.status).toBe(403)
      expect(wrong.body).toEqual({ error: "forbidden: wrong token" })
      answers.push(none, wrong)
    })

    it("no answer holds a secret of the configuration or a stack trace", () => {
      expect(answers.length).toBeGreaterThan(15)
      for (const answer of answers) {
        for (const secret of secrets) expect(answer.text).not.toContain(secret)
        expect(answer.text).not.toMatch(/\n\s+at /)
      }
    })
  })

  describe(`monitoring API options: ${frontEnd.name}`, () => {
    it("a custom prefix, and the POST route turned off", async () => {
      const started = await frontEnd.start({ prefix: "/monitor/", healthCheckRoute: false })
      try {
        expect((await request(`${started.baseUrl}/monitor/status`)).status).toBe(200)
        expect((await request(`${started.baseUrl}/api/v1/mcp/status`)).status).toBe(404)
        expect((await request(`${started.baseUrl}/monitor/pools/fx/health-check`, { method: "POST" })).status).toBe(404)
      } finally {
        await started.close()
      }
    })
  })
}

describe("after every front end closed", () => {
  it("no server process is left", async () => {
    await waitFor(async () => (await descendantsOf(process.pid)).length === 0, 10_000).catch(() => undefined)
    expect(await descendantsOf(process.pid)).toEqual([])
  })
})
