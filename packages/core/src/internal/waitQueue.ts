/**
 * Borrowers waiting for a slot of a pool that is at its maximum size, first come first served.
 * Each freed slot wakes one of them; one fiber watches the deadlines of all of them.
 */
import type * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"

type Resume<E> = (effect: Effect.Effect<void, E>) => void

interface Waiter<E> {
  readonly deadline: number
  /** Set while the waiter sleeps; cleared when it is woken, expires or leaves. */
  resume: Resume<E> | undefined
  /** Woken, but its fiber has not run yet. */
  woken: boolean
  previous: Waiter<E> | undefined
  next: Waiter<E> | undefined
}

/**
 * A FIFO of sleeping borrowers. Waiting costs one `Effect.callback` and no timer of its own:
 * a single watcher fiber, forked in the pool's scope while anybody sleeps, sleeps on the
 * pool's clock until the earliest deadline (so `TestClock` drives it) and fails the waiters
 * whose deadline has passed.
 *
 * Deadlines are `now + timeout` with one timeout per queue, so the FIFO is also deadline
 * order and the watcher only looks at the head.
 */
export class WaitQueue<E> {
  readonly #clock: Clock.Clock
  readonly #scope: Scope.Scope
  readonly #onTimeout: () => E
  #head: Waiter<E> | undefined = undefined
  #tail: Waiter<E> | undefined = undefined
  #sleeping = 0
  #woken = 0
  #closed = false
  #watching = false
  /** What a woken waiter runs first: it is no longer between its wake and its turn. */
  readonly #claim: Effect.Effect<void> = Effect.sync(() => {
    this.#woken--
  })

  constructor(options: {
    /** The clock of the deadlines and of the watcher's sleep. */
    readonly clock: Clock.Clock
    /** Where the watcher fiber runs; closing it stops the watcher. */
    readonly scope: Scope.Scope
    /** The error of a waiter whose deadline passed. */
    readonly onTimeout: () => E
  }) {
    this.#clock = options.clock
    this.#scope = options.scope
    this.#onTimeout = options.onTimeout
  }

  /** Borrowers asleep or woken and about to run. */
  get size(): number {
    return this.#sleeping + this.#woken
  }

  /**
   * Sleeps until `wakeOne` picks this waiter (succeeds), `deadline` passes on the clock
   * (fails with `onTimeout()`) or the queue is closed (interrupted). A woken waiter is counted
   * in `size` until its fiber runs, so that newcomers cannot take the slot it was woken for.
   */
  wait(deadline: number): Effect.Effect<void, E> {
    const sleep = Effect.callback<void, E>((resume) => {
      if (this.#closed) return resume(Effect.interrupt)
      const waiter: Waiter<E> = { deadline, resume, woken: false, previous: this.#tail, next: undefined }
      if (this.#tail === undefined) this.#head = waiter
      else this.#tail.next = waiter
      this.#tail = waiter
      this.#sleeping++
      return Effect.sync(() => this.#leave(waiter))
    })
    return Effect.andThen(this.#watching ? sleep : Effect.andThen(this.#startWatcher, sleep), this.#claim)
  }

  /** Wakes the borrower that has slept longest, on a microtask: call it once per freed slot. */
  wakeOne(): void {
    const waiter = this.#head
    if (waiter === undefined) return
    const resume = waiter.resume
    this.#unlink(waiter)
    if (resume === undefined) return
    this.#sleeping--
    this.#woken++
    waiter.woken = true
    queueMicrotask(() => resume(Effect.void))
  }

  /** Interrupts every sleeper and every later `wait`: the pool is shutting down. */
  close(): void {
    this.#closed = true
    while (this.#head !== undefined) {
      const waiter = this.#head
      const resume = waiter.resume
      this.#unlink(waiter)
      if (resume !== undefined) {
        this.#sleeping--
        resume(Effect.interrupt)
      }
    }
  }

  /** An interrupted waiter leaves; one woken but not yet run passes its wake on. */
  #leave(waiter: Waiter<E>): void {
    if (waiter.resume !== undefined) {
      this.#unlink(waiter)
      this.#sleeping--
    } else if (waiter.woken) {
      waiter.woken = false
      this.#woken--
      this.wakeOne()
    }
  }

  #unlink(waiter: Waiter<E>): void {
    waiter.resume = undefined
    if (waiter.previous === undefined) {
      if (this.#head === waiter) this.#head = waiter.next
    } else waiter.previous.next = waiter.next
    if (waiter.next === undefined) {
      if (this.#tail === waiter) this.#tail = waiter.previous
    } else waiter.next.previous = waiter.previous
    waiter.previous = undefined
    waiter.next = undefined
  }

  // Forked without starting at once: it first runs after the waiter that started it sleeps.
  readonly #startWatcher: Effect.Effect<void> = Effect.suspend(() => {
    if (this.#watching || this.#closed) return Effect.void
    this.#watching = true
    return Effect.asVoid(Effect.forkIn(this.#watch(), this.#scope))
  })

  /** Fails the expired waiters at the head, then sleeps until the next deadline; ends when nobody sleeps. */
  #watch(): Effect.Effect<void> {
    return Effect.suspend(() => {
      const now = this.#clock.currentTimeMillisUnsafe()
      let waiter = this.#head
      while (waiter !== undefined && waiter.deadline <= now) {
        const resume = waiter.resume
        const next = waiter.next
        this.#unlink(waiter)
        if (resume !== undefined) {
          this.#sleeping--
          resume(Effect.fail(this.#onTimeout()))
        }
        waiter = next
      }
      if (waiter === undefined || this.#closed) {
        this.#watching = false
        return Effect.void
      }
      return Effect.flatMap(this.#clock.sleep(Duration.millis(waiter.deadline - now)), () => this.#watch())
    })
  }
}
