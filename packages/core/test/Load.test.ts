/**
 * The machine's load as adaptive growth reads it: the sampler starts on the first question, and
 * its timer stops when the last pool that could ask lets go (no timer outlives the pools).
 */
import { afterEach, describe, expect, it } from "vitest"
import { hold, recentLoad, sampling } from "../src/pool/Load.js"

const releases: Array<() => void> = []
afterEach(() => {
  for (const release of releases.splice(0)) release()
})

const held = (): (() => void) => {
  const release = hold()
  releases.push(release)
  return release
}

describe("the load sampler", () => {
  it("answers nothing before its first reading, and runs from the first question", () => {
    held()
    expect(recentLoad(performance.now())).toBeUndefined()
    expect(sampling()).toBe(true)
  })

  it("stops when the last holder lets go, not before; a second release changes nothing", () => {
    const first = held()
    const second = held()
    recentLoad(performance.now())
    first()
    first()
    expect(sampling()).toBe(true)
    second()
    expect(sampling()).toBe(false)
    // Asked again (a pool of another manager): it starts again.
    const third = held()
    recentLoad(performance.now())
    expect(sampling()).toBe(true)
    third()
    expect(sampling()).toBe(false)
  })
})
