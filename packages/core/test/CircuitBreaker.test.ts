import { describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import { TestClock } from "effect/testing"
import * as fc from "fast-check"
import * as CircuitBreaker from "../src/CircuitBreaker.js"
import * as Machine from "../src/internal/circuitBreaker.js"
import { MCPCircuitOpen } from "../src/Errors.js"

type Op =
  | { readonly _tag: "admit" }
  | { readonly _tag: "finish"; readonly index: number; readonly outcome: CircuitBreaker.Outcome }
  | { readonly _tag: "advance"; readonly ms: number }

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.constant<Op>({ _tag: "admit" }) },
  {
    weight: 5,
    arbitrary: fc.record({
      _tag: fc.constant("finish" as const),
      index: fc.nat(),
      outcome: fc.constantFrom<CircuitBreaker.Outcome>("success", "failure", "failure", "ignored")
    })
  },
  { weight: 2, arbitrary: fc.record({ _tag: fc.constant("advance" as const), ms: fc.integer({ min: 0, max: 1_500 }) }) }
)

interface Outstanding {
  readonly permit: Machine.Permit
  /** How many transitions the model had seen when the permit was given. */
  readonly epoch: number
}

/**
 * Runs a sequence of operations against a breaker, checking after each step the properties
 * a breaker must keep whatever happens.
 */
const check = (threshold: number, recoveryMs: number, ops: ReadonlyArray<Op>) => {
  const breaker = Machine.make({
    name: "prop",
    failureThreshold: threshold,
    recoveryTimeout: recoveryMs,
    onTransition: () => Effect.void
  })
  let now = 1_000_000
  let epoch = 0
  let run = 0
  let openedAt: number | undefined
  const outstanding: Array<Outstanding> = []
  const probesOut = new Map<number, number>()

  for (const step of ops) {
    const before = breaker.stateUnsafe(now)
    let closedBy: { readonly probe: boolean; readonly outcome: CircuitBreaker.Outcome } | undefined
    let finishedInClosed: { readonly counted: boolean; readonly outcome: CircuitBreaker.Outcome } | undefined
    // stateUnsafe itself may have moved open -> half_open.
    const early = breaker.drainTransitions()
    for (const t of early) {
      expect(t.from).toBe("open")
      expect(t.to).toBe("half_open")
      expect(openedAt).toBeDefined()
      expect(now).toBeGreaterThanOrEqual((openedAt ?? 0) + recoveryMs)
      epoch++
    }

    switch (step._tag) {
      case "advance":
        now += step.ms
        break
      case "admit": {
        const result = breaker.admitUnsafe(now)
        if ("permit" in result) {
          // An open breaker admits nothing before its recovery timeout.
          if (before === "open") expect(now).toBeGreaterThanOrEqual((openedAt ?? 0) + recoveryMs)
          expect(result.permit.probe).toBe(before !== "closed")
          if (result.permit.probe) {
            const out = (probesOut.get(result.permit.generation) ?? 0) + 1
            probesOut.set(result.permit.generation, out)
            // Never two probes at once in one half-open period.
            expect(out).toBe(1)
          }
          outstanding.push({ permit: result.permit, epoch })
        } else {
          expect(before).not.toBe("closed")
          expect(result.rejected).toBeInstanceOf(MCPCircuitOpen)
          if (before === "open") expect(result.rejected.retryAfter.getTime()).toBe((openedAt ?? 0) + recoveryMs)
        }
        break
      }
      case "finish": {
        if (outstanding.length === 0) break
        const [finished] = outstanding.splice(step.index % outstanding.length, 1)
        if (finished === undefined) break
        if (finished.permit.probe) {
          probesOut.set(finished.permit.generation, (probesOut.get(finished.permit.generation) ?? 1) - 1)
        }
        if (before === "closed") finishedInClosed = { counted: finished.epoch === epoch, outcome: step.outcome }
        closedBy = { probe: finished.permit.probe, outcome: step.outcome }
        breaker.recordUnsafe(finished.permit, step.outcome, now)
        break
      }
    }

    if (finishedInClosed?.counted === true) {
      if (finishedInClosed.outcome === "success") run = 0
      if (finishedInClosed.outcome === "failure") run++
    }
    const transitions = breaker.drainTransitions()
    for (const t of transitions) {
      epoch++
      if (t.to === "closed") {
        // Never closes without a successful probe.
        expect(closedBy).toEqual({ probe: true, outcome: "success" })
      }
      if (t.to === "open") {
        openedAt = t.at
        if (t.from === "closed") expect(run).toBe(threshold)
        else expect(closedBy).toEqual({ probe: true, outcome: "failure" })
      }
      run = 0
    }
    // Always opens at the threshold.
    expect(run).toBeLessThan(threshold)
    expect(breaker.consecutiveFailures()).toBe(breaker.stateUnsafe(now) === "closed" ? run : 0)
  }
}

describe("CircuitBreaker state machine (property-based)", () => {
  it("keeps its invariants over random sequences of calls, outcomes and clock steps", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 2_000 }),
        fc.array(op, { minLength: 1, maxLength: 200 }),
        (threshold, recoveryMs, ops) => {
          check(threshold, recoveryMs, ops)
        }
      ),
      { numRuns: 500 }
    )
  })

  it("opens after exactly `threshold` consecutive failures, a success ending the run", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20 }), (threshold) => {
        const breaker = Machine.make({ name: "t", failureThreshold: threshold, recoveryTimeout: 1_000 })
        const fail = () => {
          const admitted = breaker.admitUnsafe(0)
          if (!("permit" in admitted)) throw new Error("rejected while closed")
          breaker.recordUnsafe(admitted.permit, "failure", 0)
        }
        for (let i = 0; i < threshold - 1; i++) fail()
        const admitted = breaker.admitUnsafe(0)
        if ("permit" in admitted) breaker.recordUnsafe(admitted.permit, "success", 0)
        for (let i = 0; i < threshold - 1; i++) fail()
        expect(breaker.stateUnsafe(0)).toBe("closed")
        fail()
        expect(breaker.stateUnsafe(0)).toBe("open")
        expect(breaker.stateUnsafe(999)).toBe("open")
        expect(breaker.stateUnsafe(1_000)).toBe("half_open")
      })
    )
  })
})

const badInputIsNotAFailure: CircuitBreaker.Classify<number, string> = (exit) => {
  if (Exit.isSuccess(exit)) return "success"
  const error = Exit.findErrorOption(exit)
  return error._tag === "Some" && error.value === "bad-input" ? "success" : "failure"
}

describe("CircuitBreaker.execute, on the test clock", () => {
  const failing = Effect.fail("down" as const)

  it.effect("fails fast with MCPCircuitOpen while open, then lets one probe through", () =>
    Effect.gen(function* () {
      const transitions: Array<string> = []
      const breaker = CircuitBreaker.make({
        name: "svc",
        failureThreshold: 3,
        recoveryTimeout: "10 seconds",
        onTransition: (t) => Effect.sync(() => transitions.push(`${t.from}->${t.to}`))
      })
      const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.exit(CircuitBreaker.execute(effect, breaker))
      for (let i = 0; i < 3; i++) expect(yield* run(failing)).toEqual(Exit.fail("down"))
      expect(yield* breaker.state).toBe("open")
      const rejected = yield* run(Effect.succeed(1))
      const error = Exit.findErrorOption(rejected)
      expect(error._tag === "Some" && error.value).toBeInstanceOf(MCPCircuitOpen)
      expect(error._tag === "Some" && error.value instanceof MCPCircuitOpen && error.value.retryAfter.getTime()).toBe(
        10_000
      )

      yield* TestClock.adjust("10 seconds")
      expect(yield* breaker.state).toBe("half_open")
      // The probe hangs until released; a second call meanwhile is refused.
      const gate = yield* Deferred.make<void>()
      const probe = yield* Effect.forkChild(run(Effect.as(Deferred.await(gate), "probe")))
      yield* Effect.yieldNow
      const second = yield* run(Effect.succeed("second"))
      expect(Exit.isFailure(second)).toBe(true)
      yield* Deferred.succeed(gate, undefined)
      expect(yield* Fiber.join(probe)).toEqual(Exit.succeed("probe"))
      expect(yield* breaker.state).toBe("closed")
      expect(transitions).toEqual(["closed->open", "open->half_open", "half_open->closed"])
    })
  )

  it.effect("a failed probe re-opens with a fresh timeout; an interrupted probe frees the slot", () =>
    Effect.gen(function* () {
      const breaker = CircuitBreaker.make({ name: "svc", failureThreshold: 1, recoveryTimeout: "5 seconds" })
      yield* Effect.exit(CircuitBreaker.execute(failing, breaker))
      yield* TestClock.adjust("5 seconds")
      yield* Effect.exit(CircuitBreaker.execute(failing, breaker))
      expect(yield* breaker.state).toBe("open")
      expect(breaker.retryAt()).toBe(10_000)
      yield* TestClock.adjust("5 seconds")
      const hanging = yield* Effect.forkChild(CircuitBreaker.execute(Effect.never, breaker))
      yield* Effect.yieldNow
      yield* Fiber.interrupt(hanging)
      expect(yield* breaker.state).toBe("half_open")
      expect(yield* Effect.exit(CircuitBreaker.execute(Effect.succeed(1), breaker))).toEqual(Exit.succeed(1))
      expect(yield* breaker.state).toBe("closed")
    })
  )

  it.effect("a classifier can say which failures count", () =>
    Effect.gen(function* () {
      const breaker = CircuitBreaker.make({ name: "svc", failureThreshold: 2, recoveryTimeout: "5 seconds" })
      for (let i = 0; i < 5; i++)
        yield* Effect.exit(CircuitBreaker.execute(Effect.fail("bad-input"), breaker, badInputIsNotAFailure))
      expect(yield* breaker.state).toBe("closed")
      yield* Effect.exit(CircuitBreaker.execute(Effect.fail("down"), breaker, badInputIsNotAFailure))
      yield* Effect.exit(CircuitBreaker.execute(Effect.fail("down"), breaker, badInputIsNotAFailure))
      expect(yield* breaker.state).toBe("open")
    })
  )
})
