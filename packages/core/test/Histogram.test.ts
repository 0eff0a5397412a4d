import { describe, expect, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Metric from "effect/Metric"
import * as fc from "fast-check"
import { Histogram, PoolTelemetry } from "../src/internal/telemetry.js"
import { MetricName, operationBoundaries, poolBoundaries } from "../src/Telemetry.js"

const seconds = fc.oneof(
  fc.double({ min: 0, max: 120, noNaN: true }),
  fc.constantFrom(...operationBoundaries, ...poolBoundaries)
)

describe("the pool's histogram series", () => {
  it("counts exactly as effect's own histogram does, boundaries included", () =>
    fc.assert(
      fc.property(
        fc.constantFrom(operationBoundaries, poolBoundaries),
        fc.array(seconds, { maxLength: 300 }),
        (boundaries, values) => {
          const ours = new Histogram(boundaries)
          const context = Context.make(Metric.MetricRegistry, new Map())
          const theirs = Metric.histogram("reference", { boundaries })
          for (const value of values) {
            ours.record(value)
            theirs.updateUnsafe(value, context)
          }
          expect(ours.state()).toEqual(theirs.valueUnsafe(context))
        }
      ),
      { numRuns: 300 }
    ))

  it("an exporter reads it from the registry, and a rebuilt pool's telemetry continues its counts", () => {
    const context = Context.make(Metric.MetricRegistry, new Map())
    const options = { serverName: "fx", transport: "stdio", context } as const
    const first = new PoolTelemetry(options)
    first.record(first.waitTime, 0.002)
    first.record(first.waitTime, 0.3)
    // configureServerPool makes a new pool, and with it a new PoolTelemetry, in the same registry.
    const second = new PoolTelemetry(options)
    second.record(second.waitTime, 7)
    const snapshot = Metric.snapshotUnsafe(context).filter((m) => m.id === MetricName.waitTime)
    expect(snapshot).toHaveLength(1)
    const state = snapshot[0]?.state as Metric.HistogramState
    expect(state.count).toBe(3)
    expect(state.sum).toBeCloseTo(7.302)
    expect(state.min).toBe(0.002)
    expect(state.max).toBe(7)
  })
})
