import { describe, expect, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Scope from "effect/Scope"
import { TestClock } from "effect/testing"
import { WaitQueue } from "../src/internal/waitQueue.js"

class Late {
  readonly _tag = "Late"
}

/** A queue on the test clock, in a scope of its own, and a way to start a waiter with a timeout. */
const setup = Effect.gen(function* () {
  const clock = yield* Clock.clockWith(Effect.succeed)
  const scope = yield* Scope.make()
  const queue = new WaitQueue<Late>({ clock, scope, onTimeout: () => new Late() })
  const woken: Array<string> = []
  const waiter = (name: string, timeoutMs = 10_000) =>
    Effect.forkChild(
      Effect.suspend(() => queue.wait(clock.currentTimeMillisUnsafe() + timeoutMs)).pipe(
        Effect.tap(() => Effect.sync(() => woken.push(name)))
      )
    )
  return { queue, scope, woken, waiter }
})

/** Lets forked fibers and microtasks run. */
const settle = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))

describe("WaitQueue", () => {
  it.effect("wakes waiters first come, first served, one per wakeOne", () =>
    Effect.gen(function* () {
      const { queue, scope, woken, waiter } = yield* setup
      const fibers = [yield* waiter("a"), yield* waiter("b"), yield* waiter("c")]
      yield* settle
      expect(queue.size).toBe(3)
      queue.wakeOne()
      yield* settle
      expect(woken).toEqual(["a"])
      queue.wakeOne()
      queue.wakeOne()
      yield* settle
      expect(woken).toEqual(["a", "b", "c"])
      expect(queue.size).toBe(0)
      for (const fiber of fibers) expect(Exit.isSuccess(yield* Fiber.await(fiber))).toBe(true)
      yield* Scope.close(scope, Exit.void)
    })
  )

  it.effect("counts a woken waiter until its fiber runs, so a newcomer sees the line", () =>
    Effect.gen(function* () {
      const { queue, scope, waiter } = yield* setup
      yield* waiter("a")
      yield* settle
      queue.wakeOne()
      // The wake is delivered on a microtask: until then the waiter still holds its place.
      expect(queue.size).toBe(1)
      yield* settle
      expect(queue.size).toBe(0)
      yield* Scope.close(scope, Exit.void)
    })
  )

  it.effect("fails a waiter with onTimeout at its deadline on the clock, not before", () =>
    Effect.gen(function* () {
      const { queue, scope, waiter } = yield* setup
      const early = yield* waiter("early", 5_000)
      yield* TestClock.adjust("2 seconds")
      const later = yield* waiter("later", 5_000)
      yield* settle
      yield* TestClock.adjust(4_999 - 2_000)
      expect(early.pollUnsafe()).toBeUndefined()
      yield* TestClock.adjust(1)
      const exit = yield* Fiber.await(early)
      expect(Exit.isFailure(exit) && exit.cause.toString()).toContain("Late")
      expect(later.pollUnsafe()).toBeUndefined()
      expect(queue.size).toBe(1)
      yield* TestClock.adjust(1_999)
      expect(later.pollUnsafe()).toBeUndefined()
      yield* TestClock.adjust(1)
      expect(Exit.isFailure(yield* Fiber.await(later))).toBe(true)
      expect(queue.size).toBe(0)
      // The watcher ended with nobody left asleep; the next waiter starts another.
      const next = yield* waiter("next", 1_000)
      yield* settle
      yield* TestClock.adjust(1_000)
      expect(Exit.isFailure(yield* Fiber.await(next))).toBe(true)
      yield* Scope.close(scope, Exit.void)
    })
  )

  it.effect("an interrupted waiter leaves the line and takes no wake", () =>
    Effect.gen(function* () {
      const { queue, scope, woken, waiter } = yield* setup
      const a = yield* waiter("a")
      yield* waiter("b")
      yield* settle
      yield* Fiber.interrupt(a)
      expect(queue.size).toBe(1)
      queue.wakeOne()
      yield* settle
      expect(woken).toEqual(["b"])
      expect(queue.size).toBe(0)
      yield* Scope.close(scope, Exit.void)
    })
  )

  it.effect("a waiter interrupted between its wake and its turn passes the wake on", () =>
    Effect.gen(function* () {
      const { queue, scope, woken, waiter } = yield* setup
      const a = yield* waiter("a")
      const b = yield* waiter("b")
      yield* settle
      yield* Effect.sync(() => {
        queue.wakeOne()
        a.interruptUnsafe()
      })
      yield* settle
      expect(Exit.hasInterrupts(yield* Fiber.await(a))).toBe(true)
      expect(woken).toEqual(["b"])
      expect(Exit.isSuccess(yield* Fiber.await(b))).toBe(true)
      expect(queue.size).toBe(0)
      yield* Scope.close(scope, Exit.void)
    })
  )

  it.effect("close interrupts every sleeper and every later wait", () =>
    Effect.gen(function* () {
      const { queue, scope, waiter } = yield* setup
      const sleepers = [yield* waiter("a"), yield* waiter("b")]
      yield* settle
      queue.close()
      for (const fiber of sleepers) expect(Exit.hasInterrupts(yield* Fiber.await(fiber))).toBe(true)
      const late = yield* waiter("late")
      expect(Exit.hasInterrupts(yield* Fiber.await(late))).toBe(true)
      expect(queue.size).toBe(0)
      yield* Scope.close(scope, Exit.void)
    })
  )
})
