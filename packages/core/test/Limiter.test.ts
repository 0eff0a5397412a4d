/**
 * The adaptive limit of one connection, driven by simulated servers (pure: no clock, no I/O):
 * one that answers concurrently up to a capacity, one that answers one request at a time, one
 * with a fast and a slow tool.
 */
import { describe, expect, it } from "vitest"
import { Limiter } from "../src/pool/Limiter.js"
import { PROOFS, ServerProfile, unalike } from "../src/pool/ServerProfile.js"

/** A server's latency for a request of `kind` when `inFlight` requests share the connection. */
interface Server {
  (kind: string, inFlight: number): number
  /** Whether it answers a later request before an earlier one (runs them concurrently). */
  readonly outOfOrder: boolean
}

const simulated = (latency: (kind: string, inFlight: number) => number, outOfOrder: boolean): Server =>
  Object.assign(latency, { outOfOrder })

/**
 * Runs `requests` requests through a connection kept at its limit (a saturated caller), each
 * kind in turn from `kinds`: answers the limits seen after each request and the final time.
 */
const drive = (limiter: Limiter, server: Server, requests: number, kinds = ["echo"], start = 0) => {
  let now = start
  const limits: Array<number> = []
  const times: Array<number> = []
  for (let i = 0; i < requests; i++) {
    const inFlight = limiter.limit
    const kind = kinds[i % kinds.length] ?? "echo"
    const latency = server(kind, inFlight)
    // The pool's ping while a request runs: answered first only by a server that runs them concurrently.
    if (limiter.wantsProof(now) && server.outOfOrder) limiter.proven()
    // The connection completes `inFlight` requests per `latency`.
    now += latency / inFlight
    limiter.record(kind, latency, inFlight, true, server.outOfOrder && inFlight > 1, now)
    limits.push(limiter.limit)
    times.push(now)
  }
  return { limits, times, now }
}

/** Answers in 1 ms until `capacity` requests run at once; beyond, they queue. */
const concurrent = (capacity: number): Server =>
  simulated((_kind, inFlight) => (inFlight <= capacity ? 1 : inFlight / capacity), true)

/** One request at a time, in order: a request sent with n in flight waits for the n - 1 before it. */
const serial = (service: number): Server => simulated((_kind, inFlight) => service * inFlight, false)

/**
 * A process that computes each request for `service` ms, one after the other, and idles `gap` ms
 * between an answer and the next request it has not been sent yet: queued requests wait for the
 * ones before them. It answers pings apart from its tools, so it is taken for a concurrent one.
 */
const computing = (service: number, gap: number): Server =>
  simulated((_kind, inFlight) => service * inFlight + gap, true)

/** A 1 ms and a 200 ms tool on a server that runs 16 requests at once. */
const fastAndSlow: Server = simulated(
  (kind, inFlight) => (kind === "slow" ? 200 : 1) * Math.max(1, inFlight / 16),
  true
)

const tail = (limits: ReadonlyArray<number>, n: number) => limits.slice(-n)

describe("the adaptive concurrency limit of a connection", () => {
  it("starts at its lower bound and rises on a server that answers concurrently, to about its capacity", () => {
    const limiter = new Limiter({ min: 1, max: 64 }, new ServerProfile())
    expect(limiter.limit).toBe(1)
    const { limits } = drive(limiter, concurrent(8), 4_000)
    const settled = tail(limits, 1_000)
    // Raised while the throughput grows, so about the capacity (a raise past it is taken back).
    expect(Math.min(...settled)).toBeGreaterThanOrEqual(6)
    expect(Math.max(...settled)).toBeLessThanOrEqual(16)
    expect(limiter.saturated(Number.MAX_SAFE_INTEGER)).toBe(true)
  })

  it("stays at 1 on a server that answers one request at a time, and says so", () => {
    const limiter = new Limiter({ min: 1, max: 64 }, new ServerProfile())
    const { limits } = drive(limiter, serial(5), 4_000)
    // Its requests are slow (5 ms) and answered in order: a second one would wait for the first.
    expect(Math.max(...limits)).toBe(1)
    expect(limiter.saturated(Number.MAX_SAFE_INTEGER)).toBe(true)
  })

  it("a new connection to a server known to answer one at a time is saturated at once; slowdown waits for a window", () => {
    const profile = new ServerProfile()
    const first = new Limiter({ min: 1, max: 64 }, profile)
    expect(first.slowdown).toBeUndefined()
    drive(first, serial(5), 200)
    // Every request of the first connection was sent alone: each took its least latency.
    expect(first.slowdown).toBeCloseTo(1, 5)
    const next = new Limiter({ min: 1, max: 64 }, profile)
    // Nothing to find out: its limit is 1, so the pool may open another at once.
    expect(next.limit).toBe(1)
    expect(next.saturated(0)).toBe(true)
    expect(next.slowdown).toBeUndefined()
    // On a fresh profile (nothing known yet) a new connection is not saturated.
    expect(new Limiter({ min: 1, max: 64 }, new ServerProfile()).saturated(0)).toBe(false)
  })

  it("one tool of 1 ms and 200 ms calls on a server that answers in order is never multiplexed", () => {
    const limiter = new Limiter({ min: 1, max: 64 }, new ServerProfile())
    // The same kind (one tool, different arguments): latency alone cannot tell the calls apart.
    let calls = 0
    const mixed = simulated((_kind, inFlight) => (calls++ % 10 === 9 ? 200 : 1) * inFlight, false)
    const { limits } = drive(limiter, mixed, 4_000)
    expect(Math.max(...limits)).toBe(1)
  })

  it("a slow tool is not taken for a queue: latency is compared per kind of request", () => {
    const limiter = new Limiter({ min: 1, max: 64 }, new ServerProfile())
    const { limits } = drive(limiter, fastAndSlow, 4_000, ["fast", "slow"])
    expect(Math.min(...tail(limits, 500))).toBeGreaterThanOrEqual(12)
  })

  it("does not rise while the connection is not using its limit", () => {
    const limiter = new Limiter({ min: 1, max: 64 }, new ServerProfile())
    drive(limiter, concurrent(64), 200)
    const before = limiter.limit
    expect(before).toBeGreaterThan(4)
    // Now nobody waits for a connection: nothing says more would help.
    for (let i = 0; i < 1_000; i++) limiter.record("echo", 1, before, false, true, 10_000 + i)
    expect(limiter.limit).toBe(before)
  })

  it("keeps within its bounds", () => {
    const low = new Limiter({ min: 3, max: 5 }, new ServerProfile())
    expect(low.limit).toBe(3)
    drive(low, concurrent(100), 2_000)
    expect(low.limit).toBe(5)
    const { limits } = drive(low, serial(5), 2_000, ["echo"], 100_000)
    expect(Math.min(...limits)).toBe(3)
  })

  it("follows a change of load within two seconds of its clock", () => {
    const limiter = new Limiter({ min: 1, max: 64 }, new ServerProfile())
    // A fast concurrent server, then the same server slowed to one request at a time.
    const first = drive(limiter, concurrent(16), 5_000)
    expect(limiter.limit).toBeGreaterThanOrEqual(12)
    const changed = first.now
    const after = drive(limiter, serial(1), 3_000, ["echo"], changed)
    // Down to 1 within 2 s of the change, and from then on at most a short try at 2 now and then.
    const settledAt = after.limits.indexOf(1)
    expect(settledAt).toBeGreaterThanOrEqual(0)
    expect((after.times[settledAt] ?? Infinity) - changed).toBeLessThan(2_000)
    expect(Math.max(...after.limits.slice(settledAt))).toBeLessThanOrEqual(2)
    expect(limiter.limit).toBe(1)
  })

  it("queues requests in a computing process only while the pool may not open another (the cores are busy)", () => {
    const server = computing(3, 0.3)
    // A second request in the process gains only the idle gap (about 10 %): not worth a queue in
    // the process while another process could run it.
    const free = new Limiter({ min: 1, max: 64 }, new ServerProfile())
    expect(Math.max(...tail(drive(free, server, 2_000).limits, 500))).toBe(1)
    // With the cores busy, a request waits as long in the process as in the pool, and keeps it busy.
    const profile = new ServerProfile()
    profile.coresBusy = true
    const busy = new Limiter({ min: 1, max: 64 }, profile)
    expect(Math.min(...tail(drive(busy, server, 2_000).limits, 500))).toBeGreaterThan(1)
  })

  it("a server that answers one at a time gets requests queued in its processes only while they compute on busy cores", () => {
    // In order, 3 ms of work a request and 0.3 ms idle between an answer and the next request.
    const server = simulated((_kind, inFlight) => 3 * inFlight + 0.3, false)
    const limitsWith = (coresBusy: boolean, computes: boolean) => {
      const profile = new ServerProfile()
      profile.coresBusy = coresBusy
      profile.computes = computes
      return tail(drive(new Limiter({ min: 1, max: 64 }, profile), server, 2_000).limits, 500)
    }
    // Busy cores read from slowed requests alone (a timer's jitter on a server that sleeps looks
    // the same): one at a time.
    expect(new Set(limitsWith(true, false))).toEqual(new Set([1]))
    // Computing, with a core to spare: another process runs the next request, not a queue.
    expect(new Set(limitsWith(false, true))).toEqual(new Set([1]))
    // Computing on busy cores, its requests alike: they wait in the process as long as in the
    // pool's line, and keep it busy while an answer travels back.
    expect(Math.min(...limitsWith(true, true))).toBeGreaterThan(1)
  })

  it("requests are unlike when the slowest took ten times the median, not for one stall among alike ones", () => {
    expect(unalike([])).toBe(false)
    // 3 ms of work on busy cores: a few times apart, and one stalled for 40 ms.
    expect(unalike([4, 3.1, 5, 9, 4.2, 3.3, 6, 40])).toBe(false)
    // 1 ms calls and one of 200 ms.
    expect(unalike([1, 1.1, 1, 1.2, 1, 1, 1.1, 200])).toBe(true)
  })

  it("counts requests unlike after two unlike windows within 10 s, not after one stall", () => {
    const profile = new ServerProfile()
    profile.unlike(1_000)
    expect(profile.unalikeUntil).toBe(0)
    profile.unlike(5_000)
    expect(profile.unalikeUntil).toBe(15_000)
    // Long after: one window starts the count again.
    const later = new ServerProfile()
    later.unlike(0)
    later.unlike(20_000)
    expect(later.unalikeUntil).toBe(0)
  })

  it("a computing one-at-a-time server keeps its queue through one stalled request", () => {
    const profile = new ServerProfile()
    profile.coresBusy = true
    profile.computes = true
    const limiter = new Limiter({ min: 1, max: 4 }, profile)
    // In order, 3 ms a request; the 1,000th stalls for 200 ms (the client's heap collected).
    let count = 0
    const server = simulated((_kind, inFlight) => 3 * inFlight + 0.3 + (++count === 1_000 ? 200 : 0), false)
    const { limits } = drive(limiter, server, 2_000)
    expect(Math.min(...limits.slice(1_000))).toBeGreaterThan(1)
  })

  it("takes a server for one that runs requests concurrently only after proofs in a row", () => {
    const profile = new ServerProfile()
    // Slow requests sent alone: the pool wants to know.
    for (let i = 0; i < 40; i++) profile.served(5)
    expect(profile.fast()).toBe(false)
    expect(profile.wantsProof(0)).toBe(true)
    profile.proven()
    expect(profile.concurrent).toBe(false)
    // The next request is tried at once; a ping answered after it starts the count again.
    expect(profile.wantsProof(1)).toBe(true)
    profile.disproven()
    expect(profile.wantsProof(2)).toBe(false)
    for (let i = 0; i < PROOFS; i++) profile.proven()
    expect(profile.concurrent).toBe(true)
  })

  it("does not ping for a proof while the server's processes compute", () => {
    const profile = new ServerProfile()
    for (let i = 0; i < 40; i++) profile.served(5)
    profile.computes = true
    expect(profile.wantsProof(0)).toBe(false)
    profile.computes = false
    expect(profile.wantsProof(0)).toBe(true)
  })

  it("a one-at-a-time server whose requests are not alike keeps one per connection, computing on busy cores or not", () => {
    // Every 10th call of 200 ms, the others 1 ms, on two tools: a 1 ms call must not wait behind a 200 ms one.
    const server = simulated((kind, inFlight) => (kind === "slow" ? 200 : 1) * inFlight, false)
    const profile = new ServerProfile()
    profile.coresBusy = true
    profile.computes = true
    const kinds = [...Array.from({ length: 9 }, () => "quick"), "slow"]
    const { limits } = drive(new Limiter({ min: 1, max: 64 }, profile), server, 2_000, kinds)
    expect(new Set(tail(limits, 1_500))).toEqual(new Set([1]))
  })
})
