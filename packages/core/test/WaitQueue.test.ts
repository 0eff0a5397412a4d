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

class Closed {
  readonly _tag = "Closed"
}

interface Ticket {
  readonly name: string
  got: string | undefined
}

/**
 * A queue on the test clock, in a scope of its own (that the test's scope closes too); a way to
 * start a waiter with a timeout, and what was handed to whom. An abandoned handoff goes to the
 * next in line, as a pool does.
 */
const setup = Effect.gen(function* () {
  const clock = yield* Clock.clockWith(Effect.succeed)
  const scope = yield* Scope.make()
  yield* Effect.addFinalizer(() => Scope.close(scope, Exit.void))
  const abandoned: Array<string> = []
  const served: Array<string> = []
  const queue: WaitQueue<Ticket, Late | Closed> = new WaitQueue<Ticket, Late | Closed>({
    clock,
    scope,
    onTimeout: () => new Late(),
    onAbandoned: (ticket) => {
      abandoned.push(ticket.name)
      const value = ticket.got
      ticket.got = undefined
      if (value !== undefined) give(value)
    }
  })
  const give = (value: string) => queue.handOff((ticket) => (ticket.got = value))
  const waiter = (name: string, timeoutMs = 10_000) => {
    const ticket: Ticket = { name, got: undefined }
    return Effect.forkChild(
      Effect.suspend(() => queue.wait(clock.currentTimeMillisUnsafe() + timeoutMs, ticket)).pipe(
        Effect.tap(() => Effect.sync(() => served.push(`${name}:${ticket.got ?? "nothing"}`)))
      )
    )
  }
  return { queue, scope, served, abandoned, waiter, give }
})

/** Lets forked fibers and microtasks run. */
const settle = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))

describe("WaitQueue", () => {
  it.effect("serves waiters first come, first served, one per handoff, each with what it was handed", () =>
    Effect.gen(function* () {
      const { queue, scope, served, waiter, give } = yield* setup
      const fibers = [yield* waiter("a"), yield* waiter("b"), yield* waiter("c")]
      yield* settle
      expect(queue.size).toBe(3)
      expect(give("x")).toBe(true)
      yield* settle
      expect(served).toEqual(["a:x"])
      give("y")
      give("z")
      yield* settle
      expect(served).toEqual(["a:x", "b:y", "c:z"])
      expect(queue.size).toBe(0)
      expect(give("nobody")).toBe(false)
      for (const fiber of fibers) expect(Exit.isSuccess(yield* Fiber.await(fiber))).toBe(true)
      yield* Scope.close(scope, Exit.void)
    })
  )

  it.effect("a served waiter leaves the line at once, so a newcomer queues behind the rest", () =>
    Effect.gen(function* () {
      const { queue, scope, served, waiter, give } = yield* setup
      yield* waiter("a")
      yield* waiter("b")
      yield* settle
      give("x")
      // Handed on the spot; its fiber runs on a microtask.
      expect(queue.size).toBe(1)
      yield* waiter("late")
      yield* settle
      give("y")
      yield* settle
      expect(served).toEqual(["a:x", "b:y"])
      expect(queue.size).toBe(1)
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

  it.effect("an interrupted waiter leaves the line and is handed nothing", () =>
    Effect.gen(function* () {
      const { queue, scope, served, abandoned, waiter, give } = yield* setup
      const a = yield* waiter("a")
      yield* waiter("b")
      yield* settle
      yield* Fiber.interrupt(a)
      expect(queue.size).toBe(1)
      give("x")
      yield* settle
      expect(served).toEqual(["b:x"])
      expect(abandoned).toEqual([])
      expect(queue.size).toBe(0)
      yield* Scope.close(scope, Exit.void)
    })
  )

  it.effect("a waiter interrupted between its handoff and its turn gives back what it was handed", () =>
    Effect.gen(function* () {
      const { queue, scope, served, abandoned, waiter, give } = yield* setup
      const a = yield* waiter("a")
      const b = yield* waiter("b")
      yield* settle
      yield* Effect.sync(() => {
        give("x")
        a.interruptUnsafe()
      })
      yield* settle
      expect(Exit.hasInterrupts(yield* Fiber.await(a))).toBe(true)
      expect(abandoned).toEqual(["a"])
      expect(served).toEqual(["b:x"])
      expect(Exit.isSuccess(yield* Fiber.await(b))).toBe(true)
      expect(queue.size).toBe(0)
      yield* Scope.close(scope, Exit.void)
    })
  )

  it.effect("failHead fails the longest sleeper; close fails every sleeper and every later wait", () =>
    Effect.gen(function* () {
      const { queue, scope, waiter } = yield* setup
      const first = yield* waiter("first")
      const sleepers = [yield* waiter("a"), yield* waiter("b")]
      yield* settle
      expect(queue.failHead(new Closed())).toBe(true)
      const failed = yield* Fiber.await(first)
      expect(Exit.isFailure(failed) && failed.cause.toString()).toContain("Closed")
      queue.close(new Closed())
      for (const fiber of sleepers) {
        const exit = yield* Fiber.await(fiber)
        expect(Exit.isFailure(exit) && exit.cause.toString()).toContain("Closed")
      }
      const late = yield* waiter("late")
      const lateExit = yield* Fiber.await(late)
      expect(Exit.isFailure(lateExit) && lateExit.cause.toString()).toContain("Closed")
      expect(queue.size).toBe(0)
      yield* Scope.close(scope, Exit.void)
    })
  )

  it.effect(
    "a waiter without a fiber (join) keeps its place among fibers, times out on the clock, and is failed by close",
    () =>
      Effect.gen(function* () {
        const { queue, scope, served, waiter, give } = yield* setup
        const clock = yield* Clock.clockWith(Effect.succeed)
        const woken: Array<string> = []
        const join = (name: string, timeoutMs: number) => {
          const ticket: Ticket = { name, got: undefined }
          queue.join(clock.currentTimeMillisUnsafe() + timeoutMs, ticket, (exit) =>
            woken.push(
              Exit.isSuccess(exit)
                ? `${name}:${ticket.got ?? "nothing"}`
                : `${name}:${exit.cause.toString().includes("Late") ? "late" : "closed"}`
            )
          )
        }
        yield* waiter("fiber")
        yield* settle
        join("plain", 5_000)
        join("brief", 1_000)
        expect(queue.size).toBe(3)
        give("x")
        give("y")
        // Woken on a microtask, never inside the handoff.
        expect(woken).toEqual([])
        yield* settle
        expect(served).toEqual(["fiber:x"])
        expect(woken).toEqual(["plain:y"])
        yield* TestClock.adjust(999)
        expect(woken).toEqual(["plain:y"])
        yield* TestClock.adjust(1)
        yield* settle
        expect(woken).toEqual(["plain:y", "brief:late"])
        join("last", 5_000)
        queue.close(new Closed())
        join("after", 5_000)
        expect(woken).toEqual(["plain:y", "brief:late"])
        yield* settle
        expect(woken).toEqual(["plain:y", "brief:late", "last:closed", "after:closed"])
        expect(queue.size).toBe(0)
        yield* Scope.close(scope, Exit.void)
      })
  )

  it.effect("while hold says so, a due waiter is kept; expire fails it once hold lets go", () =>
    Effect.gen(function* () {
      const clock = yield* Clock.clockWith(Effect.succeed)
      const scope = yield* Scope.make()
      let held = true
      const queue = new WaitQueue<Ticket, Late>({
        clock,
        scope,
        onTimeout: () => new Late(),
        onAbandoned: () => {},
        hold: () => held
      })
      const ticket: Ticket = { name: "a", got: undefined }
      const waiter = yield* Effect.forkChild(queue.wait(clock.currentTimeMillisUnsafe() + 1_000, ticket))
      yield* settle
      yield* TestClock.adjust("5 seconds")
      yield* settle
      expect(waiter.pollUnsafe()).toBeUndefined()
      expect(queue.size).toBe(1)
      held = false
      yield* queue.expire
      const exit = yield* Fiber.await(waiter)
      expect(Exit.isFailure(exit) && exit.cause.toString()).toContain("Late")
      yield* Scope.close(scope, Exit.void)
    })
  )
})
