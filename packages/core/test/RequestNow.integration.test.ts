/**
 * The fiberless path of the Promise API (`MCPConnectionPool.requestNow`), with real server
 * processes on the test clock: it lends and queues as `request` does, and whatever is not its
 * common case (a failure, a refusal, the end of a wait) goes on along the Effect path.
 */
import { describe, expect, it } from "@effect/vitest"
import { fixtureStdioConfig } from "@mcp-pool/test-servers"
import type { Client } from "@modelcontextprotocol/sdk/client/index.js"
import * as Effect from "effect/Effect"
import { TestClock } from "effect/testing"
import { MCPCircuitOpen, MCPConnectionError, MCPManagerClosed, MCPPoolExhausted } from "../src/Errors.js"
import type {
  MCPConnectionPool,
  RequestInfo,
  RunEffect,
  SdkRequestOptions,
  TraceMeta
} from "../src/MCPConnectionPool.js"
import type { PoolConfigInput } from "../src/PoolConfig.js"
import * as PooledMCPTools from "../src/PooledMCPTools.js"
import * as Telemetry from "../src/internal/telemetry.js"
import { ACQUIRE_SPAN_NAME } from "../src/Telemetry.js"
import { onPatientTestClock, processesLeft, quick, realWait, recordingTracer, startManager, text } from "./support.js"

type Outcome = { readonly ok: true; readonly value: string } | { readonly ok: false; readonly error: unknown }

const echo = (value: string) => (client: Client, options: SdkRequestOptions) =>
  client.callTool({ name: "echo", arguments: { text: value } }, undefined, options)

const sleep = (ms: number) => (client: Client, options: SdkRequestOptions) =>
  client.callTool({ name: "sleep", arguments: { ms } }, undefined, options)

const crash = (client: Client, options: SdkRequestOptions) => client.callTool({ name: "crash" }, undefined, options)

const call: RequestInfo = { method: "tools/call", idempotent: false, target: "echo" }

/**
 * One pool, "fx", of one connection that carries one request at a time; `send` runs a request
 * on its fiberless path (failing the test if the pool would not take it), its outcome settled.
 */
const setup = (config: PoolConfigInput = {}) =>
  Effect.gen(function* () {
    const { manager, close } = yield* startManager(
      { fx: fixtureStdioConfig() },
      { ...quick, minConnections: 1, maxConnections: 1, maxConcurrentRequestsPerConnection: 1, ...config }
    )
    const pool = yield* manager.pool("fx")
    const context = yield* Effect.context<never>()
    const runEffect: RunEffect = (effect) =>
      PooledMCPTools.runPromise(Effect.runForkWith(context), effect, () => new Error("interrupted"))
    const outcomes: Array<Promise<Outcome>> = []
    const send = (run: (client: Client, options: SdkRequestOptions) => Promise<object>, info = call) => {
      const sent = pool.requestNow(info, run, { runEffect })
      if (sent === undefined) throw new Error("the pool did not take the fiberless path")
      const outcome = sent.then(
        (value): Outcome => ({ ok: true, value: text(value) }),
        (error: unknown): Outcome => ({ ok: false, error })
      )
      outcomes.push(outcome)
      return outcome
    }
    return { manager, pool, send, runEffect, close }
  })

const outcome = (settled: Promise<Outcome>) => Effect.promise(() => settled)

const inLine = (pool: MCPConnectionPool, waiting: number) => realWait(() => pool.snapshot().pendingRequests === waiting)

describe("the fiberless path (requestNow)", () => {
  it.effect("lends at once, then serves the line first come first served, counted as the Effect path counts", () =>
    Effect.gen(function* () {
      const { pool, send, runEffect, close } = yield* setup()
      const order: Array<string> = []
      const first = send(sleep(200)).then((o) => (order.push("first"), o))
      yield* realWait(() => pool.snapshot().connections[0]?.inFlight === 1)
      const rest = ["b", "c", "d"].map((name) => send(echo(name)).then((o) => (order.push(name), o)))
      yield* inLine(pool, 3)
      expect((yield* outcome(first)).ok).toBe(true)
      expect(yield* Effect.promise(() => Promise.all(rest))).toEqual(
        ["b", "c", "d"].map((value) => ({ ok: true, value }))
      )
      expect(order).toEqual(["first", "b", "c", "d"])
      expect(pool.counters.requests).toBe(4)
      expect(pool.counters.hits + pool.counters.misses).toBe(4)
      expect(pool.snapshot()).toMatchObject({ pendingRequests: 0, inUseConnections: 0 })
      // A caller's signal needs the Effect path.
      expect(
        pool.requestNow({ ...call, signal: new AbortController().signal }, echo("x"), { runEffect })
      ).toBeUndefined()
      yield* close
      expect(pool.requestNow(call, echo("x"), { runEffect })).toBeUndefined()
      expect(yield* processesLeft).toEqual([])
    }).pipe(onPatientTestClock)
  )

  it.effect("a wait past acquireTimeout fails with MCPPoolExhausted on the pool's clock", () =>
    Effect.gen(function* () {
      const { pool, send, close } = yield* setup({ acquireTimeout: 2 })
      const busy = send(sleep(60_000))
      yield* realWait(() => pool.snapshot().connections[0]?.inFlight === 1)
      const waiter = send(echo("late"))
      yield* inLine(pool, 1)
      yield* TestClock.adjust(1_999)
      expect(pool.snapshot().pendingRequests).toBe(1)
      yield* TestClock.adjust(1)
      const late = yield* outcome(waiter)
      expect(!late.ok && late.error).toBeInstanceOf(MCPPoolExhausted)
      expect(pool.counters.exhausted).toBe(1)
      yield* close
      const closed = yield* outcome(busy)
      expect(!closed.ok && closed.error).toBeInstanceOf(MCPManagerClosed)
      expect(yield* processesLeft).toEqual([])
    }).pipe(onPatientTestClock)
  )

  it.effect("a borrower in line with fallback direct is served on a one-off connection when its wait ends", () =>
    Effect.gen(function* () {
      const { pool, send, close } = yield* setup({ acquireTimeout: 2, fallback: "direct" })
      const busy = send(sleep(60_000))
      yield* realWait(() => pool.snapshot().connections[0]?.inFlight === 1)
      const waiter = send(echo("direct"))
      yield* inLine(pool, 1)
      yield* TestClock.adjust(2_000)
      expect(yield* outcome(waiter)).toEqual({ ok: true, value: "direct" })
      expect(pool.counters.fallbacks).toBe(1)
      yield* close
      yield* outcome(busy)
      expect(yield* processesLeft).toEqual([])
    }).pipe(onPatientTestClock)
  )

  it.effect("a failure goes on along the Effect path: an idempotent request whose server crashed is retried", () =>
    Effect.gen(function* () {
      const { pool, send, close } = yield* setup({ retryAttempts: 1, retryDelay: 1 })
      let attempts = 0
      const retried = send(
        (client, options) => (attempts++ === 0 ? crash(client, options) : echo("again")(client, options)),
        {
          ...call,
          idempotent: true
        }
      )
      // The retry sleeps on the test clock once the failure is known: move it past the longest
      // jittered delay, less than the handshake timeout of the replacement connection.
      yield* realWait(() => pool.breaker.consecutiveFailures() === 1)
      yield* TestClock.adjust("3 seconds")
      expect(yield* outcome(retried)).toEqual({ ok: true, value: "again" })
      expect(attempts).toBe(2)
      expect(pool.counters.retries).toBe(1)
      expect(pool.counters.requests).toBe(1)
      yield* close
      expect(yield* processesLeft).toEqual([])
    }).pipe(onPatientTestClock)
  )

  it.effect("an open breaker refuses at once with MCPCircuitOpen, without lending a connection", () =>
    Effect.gen(function* () {
      const { pool, send, close } = yield* setup({
        circuitBreakerFailureThreshold: 1,
        circuitBreakerRecoveryTimeout: 30
      })
      const crashed = yield* outcome(send(crash))
      expect(!crashed.ok && crashed.error).toBeInstanceOf(MCPConnectionError)
      const leases = pool.counters.hits + pool.counters.misses
      const refused = yield* outcome(send(echo("x")))
      expect(!refused.ok && refused.error).toBeInstanceOf(MCPCircuitOpen)
      expect(pool.counters.rejected).toBe(1)
      expect(pool.counters.hits + pool.counters.misses).toBe(leases)
      yield* close
      expect(yield* processesLeft).toEqual([])
    }).pipe(onPatientTestClock)
  )

  it.effect(
    "a pool replaced by configureServerPool forwards its line to the new pool; its call in flight ends where it began",
    () =>
      Effect.gen(function* () {
        const { manager, pool, send, close } = yield* setup()
        const busy = send(sleep(800))
        yield* realWait(() => pool.snapshot().connections[0]?.inFlight === 1)
        const waiters = ["a", "b"].map((name) => send(echo(name)))
        yield* inLine(pool, 2)
        yield* manager.configureServerPool("fx", { maxConnections: 2 })
        const successor = yield* manager.pool("fx")
        expect(successor).not.toBe(pool)
        expect(yield* outcome(busy)).toEqual({ ok: true, value: "slept 800 ms" })
        expect(yield* Effect.promise(() => Promise.all(waiters))).toEqual([
          { ok: true, value: "a" },
          { ok: true, value: "b" }
        ])
        // Counted where they were served: the old pool's line was forwarded, not failed.
        expect(pool.counters.errors).toBe(0)
        expect(successor.counters.requests).toBe(2)
        yield* close
        expect(yield* processesLeft).toEqual([])
      }).pipe(onPatientTestClock)
  )

  it.effect(
    "a traced caller gets the spans of the Effect path: CLIENT, acquire while in line, and its traceparent in _meta",
    () => {
      const { spans, tracer } = recordingTracer()
      return Effect.gen(function* () {
        const { pool, close } = yield* setup()
        const context = yield* Effect.context<never>()
        const runFork = Effect.runForkWith(context)
        const tracing = runFork(
          Effect.withFiber((fiber) => Effect.succeed(Telemetry.tracingOf(fiber, runFork)))
        ).pollUnsafe()
        if (tracing?._tag !== "Success" || tracing.value === undefined)
          return yield* Effect.die("no tracing in this context")
        const runEffect: RunEffect = (effect) =>
          PooledMCPTools.runPromise(runFork, effect, () => new Error("interrupted"))
        const caller = { runEffect, tracing: tracing.value }
        const traced = <A>(
          run: (client: Client, options: SdkRequestOptions, meta: TraceMeta) => Promise<A>,
          target: string
        ) =>
          Effect.promise(
            () => pool.requestNow({ ...call, target }, run, caller) ?? Promise.reject(new Error("not taken"))
          )

        const result = yield* traced(
          (client, options, meta) => client.callTool({ name: "echo_meta", _meta: meta }, undefined, options),
          "echo_meta"
        )
        const client = spans.find((span) => span.name === "tools/call echo_meta")
        expect(client).toMatchObject({ kind: "client", status: { _tag: "Ended" } })
        expect(Object.fromEntries(client?.attributes ?? [])).toMatchObject({
          "mcp.method.name": "tools/call",
          "gen_ai.tool.name": "echo_meta",
          "mcp_pool.connection.reused": true
        })
        expect(JSON.parse(text(result))).toMatchObject({ traceparent: `00-${client?.traceId}-${client?.spanId}-01` })

        // The second waits in line for the one connection: its wait is an acquire span under its CLIENT span.
        yield* Effect.all([traced(sleep(100), "sleep"), traced(echo("after"), "echo")], { concurrency: "unbounded" })
        const waited = spans.find((span) => span.name === "tools/call echo")
        const acquires = spans.filter((span) => span.name === ACQUIRE_SPAN_NAME)
        expect(acquires).toHaveLength(1)
        expect(acquires[0]?.status._tag).toBe("Ended")
        expect(acquires[0]?.parent._tag === "Some" && acquires[0].parent.value.spanId).toBe(waited?.spanId)
        expect(spans.every((span) => span.status._tag === "Ended")).toBe(true)
        yield* close
      }).pipe(Effect.withTracer(tracer), onPatientTestClock)
    }
  )

  it.effect("closing the pool fails the borrowers in line with MCPManagerClosed and leaves no process", () =>
    Effect.gen(function* () {
      const { pool, send, close } = yield* setup()
      const busy = send(sleep(60_000))
      yield* realWait(() => pool.snapshot().connections[0]?.inFlight === 1)
      const waiters = [send(echo("a")), send(echo("b"))]
      yield* inLine(pool, 2)
      yield* close
      for (const waiter of [busy, ...waiters]) {
        const ended = yield* outcome(waiter)
        expect(!ended.ok && ended.error).toBeInstanceOf(MCPManagerClosed)
      }
      expect(yield* processesLeft).toEqual([])
    }).pipe(onPatientTestClock)
  )
})
