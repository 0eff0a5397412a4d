import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Result from "effect/Result"
import * as Stream from "effect/Stream"
import { TestClock } from "effect/testing"
import * as Alerts from "../src/Alerts.js"
import { MCPInvalidQuery } from "../src/Errors.js"

const warning = (message: string) => () => ({ severity: "warning" as const, message })

describe("Alerts", () => {
  it.effect("raises on the transition into a condition, not while it lasts", () =>
    Effect.gen(function* () {
      const alerts = yield* Alerts.make({ cooldown: "10 seconds" })
      for (let i = 0; i < 5; i++) yield* alerts.observe("fx", "pool_exhaustion", true, warning("busy"))
      expect(alerts.history()).toHaveLength(1)
      expect(alerts.isActive("fx", "pool_exhaustion")).toBe(true)
      // Another pool and another type are separate conditions.
      yield* alerts.observe("other", "pool_exhaustion", true, warning("busy"))
      yield* alerts.observe("fx", "high_error_rate", true, warning("errors"))
      expect(alerts.history().map((a) => [a.server_name, a.type])).toEqual([
        ["fx", "high_error_rate"],
        ["other", "pool_exhaustion"],
        ["fx", "pool_exhaustion"]
      ])
    })
  )

  it.effect("a flapping condition raises again only after the cooldown", () =>
    Effect.gen(function* () {
      const alerts = yield* Alerts.make({ cooldown: "30 seconds" })
      const flap = Effect.gen(function* () {
        yield* alerts.observe("fx", "high_error_rate", true, warning("errors"))
        yield* alerts.observe("fx", "high_error_rate", false, warning("errors"))
      })
      yield* flap
      yield* TestClock.adjust("10 seconds")
      yield* flap
      yield* TestClock.adjust("19 seconds")
      yield* flap
      expect(alerts.history()).toHaveLength(1)
      yield* TestClock.adjust("1 second")
      yield* flap
      const history = alerts.history()
      expect(history).toHaveLength(2)
      expect(history.map((a) => a.timestamp)).toEqual([new Date(30_000).toISOString(), new Date(0).toISOString()])
    })
  )

  it.effect("keeps a bounded history, newest first, filtered by severity and limited", () =>
    Effect.gen(function* () {
      const alerts = yield* Alerts.make({ cooldown: 0, historySize: 5 })
      for (let i = 0; i < 8; i++) {
        const severity = i % 2 === 0 ? "warning" : "critical"
        yield* alerts.observe(`s${i}`, "health_check_failure", true, () => ({ severity, message: `#${i}` }))
      }
      expect(alerts.history().map((a) => a.message)).toEqual(["#7", "#6", "#5", "#4", "#3"])
      expect(alerts.history({ severity: "critical" }).map((a) => a.message)).toEqual(["#7", "#5", "#3"])
      expect(alerts.history({ severity: "info" })).toEqual([])
      expect(alerts.history({ limit: 2 }).map((a) => a.id)).toEqual([8, 7])
    })
  )

  it.effect("publishes live alerts on a stream and to subscribers; a throwing listener is logged, not fatal", () =>
    Effect.gen(function* () {
      const alerts = yield* Alerts.make()
      const received: Array<string> = []
      const unsubscribe = alerts.subscribe((alert) => received.push(alert.type))
      alerts.subscribe(() => {
        throw new Error("listener bug")
      })
      const streamed = yield* Effect.forkChild(Stream.runCollect(Stream.take(alerts.stream, 2)))
      yield* Effect.yieldNow
      yield* alerts.observe("fx", "circuit_breaker_open", true, () => ({ severity: "critical", message: "open" }))
      unsubscribe()
      yield* alerts.observe("fx", "pool_exhaustion", true, warning("busy"))
      const collected = yield* Fiber.join(streamed)
      expect(Array.from(collected, (a) => a.type)).toEqual(["circuit_breaker_open", "pool_exhaustion"])
      expect(received).toEqual(["circuit_breaker_open"])
    })
  )

  it("validates queries from outside, naming the parameter", () => {
    expect(Alerts.validateQuery({ severity: "warning", limit: "10" })).toEqual(
      Result.succeed({ severity: "warning", limit: 10 })
    )
    expect(Alerts.validateQuery({})).toEqual(Result.succeed({ severity: undefined, limit: undefined }))
    for (const [input, parameter] of [
      [{ severity: "urgent" }, "severity"],
      [{ severity: 3 }, "severity"],
      [{ limit: "0" }, "limit"],
      [{ limit: "1001" }, "limit"],
      [{ limit: "2.5" }, "limit"],
      [{ limit: "ten" }, "limit"],
      [{ limit: 2.5 }, "limit"]
    ] as const) {
      const result = Alerts.validateQuery(input)
      expect(Result.isFailure(result)).toBe(true)
      if (Result.isFailure(result)) {
        expect(result.failure).toBeInstanceOf(MCPInvalidQuery)
        expect(result.failure.parameter).toBe(parameter)
        expect(result.failure.message).toContain(parameter)
      }
    }
  })
})
