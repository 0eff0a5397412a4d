/**
 * The growth rules of an adaptive pool, pure (the test gives the time): a connection opened for
 * fast requests must raise the pool's throughput or growth pauses; a stdio server's processes
 * must not only share busy cores; a line goes on while borrowers keep joining it.
 */
import { describe, expect, it } from "vitest"
import {
  coreToSpare,
  GROWTH_GAIN,
  oneAtATime,
  UNKNOWN_SLOW_MS,
  judging,
  make,
  MAX_GROWTH_PAUSE_MS,
  MIN_IDLE_CORES,
  sampleRate,
  sharesBusyCores,
  SLOWED,
  joining
} from "../src/pool/Growth.js"
import { SAMPLE_MS } from "../src/pool/Load.js"

/** A growth record whose pool completed `rate` requests per second before a connection opened at `at`. */
const trialAt = (at: number, rate: number) => {
  const growth = make(0)
  sampleRate(growth, 0, 0)
  sampleRate(growth, (rate * at) / 1000, at)
  growth.trial = { openedAt: at, rateBefore: growth.rate, mark: undefined }
  return growth
}

/**
 * Judges the trial of `growth` opened at `at`: the connection joins at +250 ms with `before`
 * requests done, and the pool then completes `rate` per second for 500 ms. Answers whether
 * growth still waits at the end.
 */
const judged = (growth: ReturnType<typeof make>, at: number, rate: number, before = 0): boolean => {
  // Still joining: too early, then a connection still opening.
  expect(judging(growth, at + 100, 0, before)).toBe(true)
  expect(judging(growth, at + 250, 1, before)).toBe(true)
  expect(judging(growth, at + 260, 0, before)).toBe(true)
  // Measured over 500 ms from the mark.
  expect(judging(growth, at + 700, 0, before + rate * 0.44)).toBe(true)
  return judging(growth, at + 760, 0, before + rate * 0.5)
}

describe("growth of a pool of fast requests", () => {
  it("goes on at once after a connection that raised the throughput by the gain", () => {
    const growth = trialAt(1_000, 4_000)
    expect(judged(growth, 1_000, 4_000 * (1 + GROWTH_GAIN) + 1)).toBe(false)
    expect(growth.trial).toBeUndefined()
    expect(judging(growth, 1_761, 0, 0)).toBe(false)
  })

  it("pauses after one that did not, for 1 s doubling up to the longest pause; a paying one resets it", () => {
    let at = 1_000
    const pauses: Array<number> = []
    for (let i = 0; i < 7; i++) {
      const growth = trialAt(at, 4_000)
      // Carry the pause over: the same pool, one trial after another.
      if (i > 0) growth.pauseMs = pauses[i - 1] ?? 0
      expect(judged(growth, at, 4_000)).toBe(true)
      const end = at + 760
      pauses.push(growth.pauseMs)
      expect(judging(growth, end + growth.pauseMs - 1, 0, 0)).toBe(true)
      expect(judging(growth, end + growth.pauseMs, 0, 0)).toBe(false)
      at = end + growth.pauseMs
    }
    expect(pauses).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, MAX_GROWTH_PAUSE_MS, MAX_GROWTH_PAUSE_MS])
    const growth = trialAt(at, 4_000)
    growth.pauseMs = MAX_GROWTH_PAUSE_MS
    expect(judged(growth, at, 5_000)).toBe(false)
    expect(growth.pauseMs).toBe(0)
  })
})

describe("a stdio server's processes and the machine's cores", () => {
  const idle = { loop: 0.2, idleCores: MIN_IDLE_CORES + 0.5 }
  const busy = { loop: 0.2, idleCores: MIN_IDLE_CORES / 2 }
  const slowed = [SLOWED + 0.1, SLOWED + 0.3]
  const notSlowed = [1, 1.05]

  it("a core to spare, read while borrowers waited: another process pays", () => {
    expect(sharesBusyCores(idle, 2 * SAMPLE_MS, slowed)).toBe(false)
  })

  it("busy cores and requests slowed: another process would only share them", () => {
    expect(sharesBusyCores(busy, 2 * SAMPLE_MS, slowed)).toBe(true)
    // No reading yet, or one from before the line, counts as busy.
    expect(sharesBusyCores(undefined, 10_000, slowed)).toBe(true)
    expect(sharesBusyCores(idle, 2 * SAMPLE_MS - 1, slowed)).toBe(true)
  })

  it("a server that is not slowed (it sleeps or waits) grows on a busy machine", () => {
    expect(sharesBusyCores(busy, 2 * SAMPLE_MS, notSlowed)).toBe(false)
    // Connections without a measured window say nothing, and do not dilute the others.
    expect(sharesBusyCores(busy, 2 * SAMPLE_MS, [undefined, undefined])).toBe(false)
    expect(sharesBusyCores(busy, 2 * SAMPLE_MS, [undefined, ...slowed, undefined])).toBe(true)
  })

  it("a server whose processes compute needs a core of its own for one more, slowed or not yet", () => {
    const computes = true
    // Enough idle for a process that sleeps, not for one that computes.
    const partly = { loop: 0.2, idleCores: MIN_IDLE_CORES + 0.2 }
    expect(sharesBusyCores(partly, 2 * SAMPLE_MS, notSlowed)).toBe(false)
    expect(sharesBusyCores(partly, 2 * SAMPLE_MS, notSlowed, computes)).toBe(true)
    const wholeCore = { loop: 0.2, idleCores: 1 - MIN_IDLE_CORES }
    expect(sharesBusyCores(wholeCore, 2 * SAMPLE_MS, notSlowed, computes)).toBe(false)
    // A reading from before the line, or none, says nothing of the cores it would share.
    expect(sharesBusyCores(wholeCore, 2 * SAMPLE_MS - 1, notSlowed, computes)).toBe(true)
    expect(sharesBusyCores(undefined, 10_000, notSlowed, computes)).toBe(true)
  })
})

/** A reading of the load with `idleCores` idle. */
const load = (idleCores: number) => ({ loop: 0.1, idleCores })

describe("processes of a server known to answer one at a time, opening together", () => {
  it("each process starting counts as a core busy: one reading of idle cores opens no more than they can run", () => {
    expect(coreToSpare(load(1.5), 0)).toBe(true)
    expect(coreToSpare(load(1.5), 1)).toBe(true)
    expect(coreToSpare(load(1.5), 2)).toBe(false)
    expect(coreToSpare(load(1), 1)).toBe(false)
    expect(coreToSpare(load(MIN_IDLE_CORES), 0)).toBe(true)
    // No reading yet: nothing is known to be idle.
    expect(coreToSpare(undefined, 0)).toBe(false)
  })
})

describe("growing as for a server that answers one request at a time", () => {
  it("known to, or of unknown speed once borrowers waited long enough; never once shown concurrent", () => {
    expect(oneAtATime(false, false, 0)).toBe(true)
    expect(oneAtATime(true, false, 10_000)).toBe(false)
    // Unknown speed: fast requests would have made it known before borrowers waited this long.
    expect(oneAtATime(undefined, false, UNKNOWN_SLOW_MS - 1)).toBe(false)
    expect(oneAtATime(undefined, false, UNKNOWN_SLOW_MS)).toBe(true)
    expect(oneAtATime(undefined, true, UNKNOWN_SLOW_MS)).toBe(false)
    expect(oneAtATime(false, true, 0)).toBe(false)
  })
})

describe("the line of borrowers", () => {
  it("starts when the first borrower joins an empty line after a quiet spell, and goes on while they keep joining", () => {
    const growth = make(0)
    joining(growth, 0, 1_000)
    expect(growth.lineSince).toBe(1_000)
    joining(growth, 3, 1_050)
    // Emptied for a moment between two borrowers of a steady load: the same line.
    joining(growth, 0, 1_100)
    expect(growth.lineSince).toBe(1_000)
    // Nobody joined for longer than a reading: a new line.
    joining(growth, 0, 1_100 + SAMPLE_MS + 1)
    expect(growth.lineSince).toBe(1_100 + SAMPLE_MS + 1)
  })
})
