/**
 * Borrowers waiting for a connection of a pool, first come first served. A freed connection is
 * handed to the borrower that has waited longest; one fiber watches the deadlines of all of them.
 */
import type * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Scope from "effect/Scope"

/** How a waiter is woken: with `Exit.void` when served, else with its failure. */
type Resume<E> = (exit: Exit.Exit<void, E>) => void

interface Waiter<K, E> {
  readonly deadline: number
  /** What the waiter is handed things through (the pool's lease ticket). */
  readonly ticket: K
  /** Set while the waiter sleeps; cleared when it is served, fails or leaves. */
  resume: Resume<E> | undefined
  /** Served, and its fiber has not run since. */
  served: boolean
  previous: Waiter<K, E> | undefined
  next: Waiter<K, E> | undefined
}

/**
 * A FIFO of sleeping borrowers. Waiting costs one `Effect.callback` (or, for a caller without a
 * fiber, one callback: see `join`) and no timer of its own:
 * a single watcher fiber, forked in the pool's scope while anybody sleeps, sleeps on the
 * pool's clock until the earliest deadline (so `TestClock` drives it) and fails the waiters
 * whose deadline has passed.
 *
 * A freed connection is handed straight to the head of the line (written on its ticket): the
 * waiter owns it from that moment, so a newcomer can never take it first. A waiter interrupted
 * between its handoff and its turn gives it back through `onAbandoned(ticket)`.
 *
 * Deadlines are `now + timeout` with one timeout per queue, so the FIFO is also deadline
 * order and the watcher only looks at the head.
 */
export class WaitQueue<K, E> {
  readonly #clock: Clock.Clock
  readonly #scope: Scope.Scope
  readonly #onTimeout: () => E
  readonly #onAbandoned: (ticket: K) => void
  readonly #hold: () => boolean
  #head: Waiter<K, E> | undefined = undefined
  #tail: Waiter<K, E> | undefined = undefined
  #sleeping = 0
  #closedWith: { readonly error: E } | undefined = undefined
  #watching = false

  constructor(options: {
    /** The clock of the deadlines and of the watcher's sleep. */
    readonly clock: Clock.Clock
    /** Where the watcher fiber runs; closing it stops the watcher. */
    readonly scope: Scope.Scope
    /** The error of a waiter whose deadline passed. */
    readonly onTimeout: () => E
    /** Takes back what was handed to a waiter that was interrupted before it could take it. */
    readonly onAbandoned: (ticket: K) => void
    /**
     * While it answers `true`, no deadline is enforced (the pool waits for an opening whose
     * outcome the borrowers should get); call `expire` once it may have changed.
     */
    readonly hold?: (() => boolean) | undefined
  }) {
    this.#clock = options.clock
    this.#scope = options.scope
    this.#onTimeout = options.onTimeout
    this.#onAbandoned = options.onAbandoned
    this.#hold = options.hold ?? never
  }

  /** Borrowers asleep in the line. */
  get size(): number {
    return this.#sleeping
  }

  /**
   * Sleeps until this waiter is served through its `ticket` (succeeds), `deadline` passes on
   * the clock (fails with `onTimeout()`), or the line fails it (`failHead`, `failAll`, `close`).
   */
  wait(deadline: number, ticket: K): Effect.Effect<void, E> {
    const sleep = Effect.callback<void, E>((resume) => {
      const closed = this.#closedWith
      if (closed !== undefined) return resume(Exit.fail(closed.error))
      const waiter = this.#enqueue(deadline, ticket, resume)
      return Effect.sync(() => this.#leave(waiter))
    })
    return this.#watching ? sleep : Effect.andThen(this.#startWatcher, sleep)
  }

  /**
   * `wait` for a caller without a fiber: `resume` is called once, on a microtask, with
   * `Exit.void` once served through `ticket`, else with the failure. Such a waiter cannot leave.
   */
  join(deadline: number, ticket: K, resume: Resume<E>): void {
    const closed = this.#closedWith
    if (closed !== undefined) return later(resume, Exit.fail(closed.error))
    this.#enqueue(deadline, ticket, resume)
    if (!this.#watching) Effect.runFork(this.#startWatcher)
  }

  #enqueue(deadline: number, ticket: K, resume: Resume<E>): Waiter<K, E> {
    const waiter: Waiter<K, E> = { deadline, ticket, resume, served: false, previous: this.#tail, next: undefined }
    if (this.#tail === undefined) this.#head = waiter
    else this.#tail.next = waiter
    this.#tail = waiter
    this.#sleeping++
    return waiter
  }

  /**
   * Serves the borrower that has slept longest: `serve` writes what it gets on its ticket, now;
   * its fiber resumes on a microtask (never inside the serving one). False when nobody sleeps.
   */
  handOff(serve: (ticket: K) => void): boolean {
    const waiter = this.#head
    if (waiter === undefined) return false
    const resume = this.#take(waiter)
    serve(waiter.ticket)
    waiter.served = true
    queueMicrotask(() => {
      waiter.served = false
      resume(Exit.void)
    })
    return true
  }

  /** Fails the borrower that has slept longest with `error`; false when nobody sleeps. */
  failHead(error: E): boolean {
    const waiter = this.#head
    if (waiter === undefined) return false
    later(this.#take(waiter), Exit.fail(error))
    return true
  }

  /**
   * Fails every borrower asleep now with `error` (not those that join later: each fiber
   * resumes on a microtask, so a borrower that fails and comes straight back is a newcomer).
   */
  failAll(error: E): void {
    const failed = Exit.fail(error)
    while (this.#head !== undefined) later(this.#take(this.#head), failed)
  }

  /** Fails every sleeper and every later `wait` with `error`: the pool is shutting down. */
  close(error: E): void {
    this.#closedWith = { error }
    this.failAll(error)
  }

  /** Takes the waiter out of the line and answers its resume function. */
  #take(waiter: Waiter<K, E>): Resume<E> {
    const resume = waiter.resume
    this.#unlink(waiter)
    this.#sleeping--
    return resume ?? ignore
  }

  /** An interrupted waiter leaves; one served but not yet run gives back what it was handed. */
  #leave(waiter: Waiter<K, E>): void {
    if (waiter.resume !== undefined) {
      this.#unlink(waiter)
      this.#sleeping--
      return
    }
    if (waiter.served) {
      waiter.served = false
      this.#onAbandoned(waiter.ticket)
    }
  }

  #unlink(waiter: Waiter<K, E>): void {
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
    if (this.#watching || this.#closedWith !== undefined) return Effect.void
    this.#watching = true
    return Effect.asVoid(Effect.forkIn(this.#watch(), this.#scope))
  })

  /**
   * Fails the waiters whose deadline passed (unless `hold` says to wait), and makes sure the
   * watcher runs while anybody sleeps: call it when what `hold` reads may have changed.
   */
  readonly expire: Effect.Effect<void> = Effect.suspend(() => {
    this.#expireDue(this.#clock.currentTimeMillisUnsafe())
    return this.#head === undefined ? Effect.void : this.#startWatcher
  })

  #expireDue(now: number): void {
    while (this.#head !== undefined && this.#head.deadline <= now && !this.#hold()) {
      later(this.#take(this.#head), Exit.fail(this.#onTimeout()))
    }
  }

  /**
   * Fails the expired waiters at the head, then sleeps until the next deadline; ends when nobody
   * sleeps, or when the head is due but held (`expire` starts it again).
   */
  #watch(): Effect.Effect<void> {
    return Effect.suspend(() => {
      const now = this.#clock.currentTimeMillisUnsafe()
      this.#expireDue(now)
      const head = this.#head
      if (head === undefined || this.#closedWith !== undefined || head.deadline <= now) {
        this.#watching = false
        return Effect.void
      }
      return Effect.flatMap(this.#clock.sleep(Duration.millis(head.deadline - now)), () => this.#watch())
    })
  }
}

const ignore = (): void => {}

const never = (): boolean => false

/**
 * Resumes a waiter's fiber on a microtask: never inside the fiber that serves or fails it, so
 * that a resumed borrower cannot run (and come back to the line) in the middle of a loop over it.
 */
const later = <E>(resume: Resume<E>, exit: Exit.Exit<void, E>): void => {
  queueMicrotask(() => resume(exit))
}
