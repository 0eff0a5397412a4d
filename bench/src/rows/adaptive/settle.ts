/** Row 11, part 4: how soon the connections' limits stop changing after the load changes. */
import { type MCPConnectionManagerPromise, type MCPConnectionPool } from "@mcp-pool/core"
import { fixtureStdioConfig } from "@mcp-pool/test-servers"
import { type Call, sleep } from "../../measure.ts"
import { check } from "../../row.ts"
import { formatMs } from "../../stats.ts"
import { echoParams, poolOf, SERVER } from "../../subjects.ts"
import { defaultManager, formatLimits, limitsJson, limitsOf, type Part, reported } from "./common.ts"

/** 4. How soon the connections' limits stop changing after the load changes. */
const LOW_IN_FLIGHT = 1
const HIGH_IN_FLIGHT = 64
/** Time at the low load before the first change: the fresh pool's servers warm up. */
const BEFORE_MS = 1000
/** How long each load is kept, sampling the limits, after it changed. */
const OBSERVE_MS = 2500
const SAMPLE_EVERY_MS = 50
const STABLE_MS = 500
const TOLERANCE = 0.1
const CYCLES = 2
export const MAX_SETTLE_MS = 2000

/** A load kept at `inFlight` calls until stopped. */
const sustain = (call: Call, inFlight: number) => {
  // An object, so that the workers read the flag `stop` sets (a closed-over `let` looks unmodified to lint).
  const state = { running: true }
  let calls = 0
  let failed = 0
  const worker = async (): Promise<void> => {
    while (state.running) {
      try {
        await call()
      } catch {
        failed++
      }
      calls++
    }
  }
  const workers = Promise.all(Array.from({ length: inFlight }, worker))
  return {
    /** Stops issuing calls and resolves once the calls in flight have ended. */
    stop: async () => {
      state.running = false
      await workers
      return { calls, failed }
    }
  }
}

/** The limits at one moment, `atMs` after the load changed, and the connections being opened then. */
interface LimitSample {
  readonly atMs: number
  readonly limits: ReadonlyArray<readonly [number, number | undefined]>
  readonly opening: number
}

/** `10 conn.: 1 each`, with `, 3 opening` while connections are being opened. */
const formatSample = (sample: LimitSample): string =>
  `${formatLimits(sample.limits)}${sample.opening > 0 ? `, ${sample.opening} opening` : ""}`

/** Samples the limits every 50 ms for `durationMs`, the first at once. */
const observe = async (pool: MCPConnectionPool.MCPConnectionPool, durationMs: number) => {
  const samples: Array<LimitSample> = []
  const started = performance.now()
  for (;;) {
    const atMs = performance.now() - started
    samples.push({ atMs, limits: limitsOf(pool), opening: pool.snapshot().openingConnections })
    if (atMs >= durationMs) return samples
    // Paced on the start, so that a late timer does not shift the samples after it.
    await sleep(Math.max(0, samples.length * SAMPLE_EVERY_MS - (performance.now() - started)))
  }
}

/**
 * Whether `sample` has the connections of `reference`, each limit within ±10 % of its limit
 * there, and as many connections being opened.
 */
const near = (sample: LimitSample, reference: LimitSample): boolean =>
  sample.opening === reference.opening &&
  sample.limits.length === reference.limits.length &&
  reference.limits.every(([id, limit], i) => {
    const [otherId, other] = sample.limits[i] ?? []
    return otherId === id && limit !== undefined && other !== undefined && Math.abs(other - limit) <= TOLERANCE * limit
  })

/** When a load change settled, or why it cannot be said; `changes`: each sample that differed from the one before. */
type Settle = (
  { readonly settled: true; readonly ms: number } | { readonly settled: false; readonly reason: string }
) & {
  readonly limits: LimitSample["limits"]
  readonly changes: ReadonlyArray<{ readonly atMs: number; readonly limits: string }>
}

const MAX_CHANGES_KEPT = 40

/**
 * The time from the load change to the first sample from which every later one stays within
 * ±10 % of the last (same connections, none being opened); settled when that stretch lasts at
 * least 500 ms. A connection being opened counts as a change still under way: without it, a
 * load change whose new connections take longer than the window to open would look settled at 0.
 */
const settleOf = (samples: ReadonlyArray<LimitSample>): Settle => {
  const changes = samples
    .filter((sample, i) => {
      const before = samples[i - 1]
      return before === undefined || formatSample(sample) !== formatSample(before)
    })
    .slice(0, MAX_CHANGES_KEPT)
    .map((sample) => ({ atMs: Math.round(sample.atMs), limits: formatSample(sample) }))
  const last = samples.at(-1)
  if (last === undefined) return { settled: false, reason: "no sample", limits: [], changes }
  if (!samples.every((sample) => reported(sample.limits))) {
    return { settled: false, reason: "no concurrencyLimit", limits: last.limits, changes }
  }
  if (last.opening > 0) {
    return { settled: false, reason: `not settled (${last.opening} opening)`, limits: last.limits, changes }
  }
  // The sample after the last one outside the final band.
  const from = samples[samples.findLastIndex((sample) => !near(sample, last)) + 1]?.atMs ?? last.atMs
  return last.atMs - from >= STABLE_MS
    ? { settled: true, ms: from, limits: last.limits, changes }
    : { settled: false, reason: `not settled (changed at ${formatMs(from)})`, limits: last.limits, changes }
}

const formatSettle = (settle: Settle): string => (settle.settled ? formatMs(settle.ms) : settle.reason)

/**
 * 4. From 1 to 64 echo calls in flight and back, twice, on a fresh pool with "auto". The
 * servers are not pinned: the connections a pool opens under load are part of how it settles,
 * and a server started on the one core that the busy servers hold took seconds to start.
 */
export const settlePart = async (): Promise<Part> => {
  let manager: MCPConnectionManagerPromise | undefined
  try {
    manager = await defaultManager(fixtureStdioConfig())
    const pool = await poolOf(manager)
    const tools = manager.tools(SERVER)
    const call = () => tools.callTool(echoParams)
    let load = sustain(call, LOW_IN_FLIGHT)
    await sleep(BEFORE_MS)
    const initial = limitsOf(pool)
    const up: Array<Settle> = []
    const down: Array<Settle> = []
    let failed = 0
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      for (const [inFlight, settles] of [
        [HIGH_IN_FLIGHT, up],
        [LOW_IN_FLIGHT, down]
      ] as const) {
        failed += (await load.stop()).failed
        load = sustain(call, inFlight)
        settles.push(settleOf(await observe(pool, OBSERVE_MS)))
      }
    }
    failed += (await load.stop()).failed
    const judge = (settles: ReadonlyArray<Settle>) =>
      settles.every((settle) => settle.settled && settle.ms <= MAX_SETTLE_MS) && failed === 0
    const upPass = judge(up)
    const downPass = judge(down)
    const figures = (settles: ReadonlyArray<Settle>) =>
      settles.map((settle) => ({
        settledMs: settle.settled ? Math.round(settle.ms) : null,
        ...(settle.settled ? {} : { reason: settle.reason }),
        limits: limitsJson(settle.limits),
        changes: settle.changes
      }))
    const target = `<= ${formatMs(MAX_SETTLE_MS)}`
    return {
      baseline: {},
      subject: {
        settle: {
          label: `pool with "auto", echo ${LOW_IN_FLIGHT} -> ${HIGH_IN_FLIGHT} -> ${LOW_IN_FLIGHT} in flight, ${CYCLES} cycles`,
          initialLimits: limitsJson(initial),
          up: figures(up),
          down: figures(down)
        }
      },
      checks: [
        check(
          `limits settle, ${LOW_IN_FLIGHT} -> ${HIGH_IN_FLIGHT} in flight`,
          "",
          up.map(formatSettle).join(", "),
          "",
          target,
          upPass
        ),
        check(
          `limits settle, ${HIGH_IN_FLIGHT} -> ${LOW_IN_FLIGHT} in flight`,
          "",
          down.map(formatSettle).join(", "),
          "",
          target,
          downPass
        ),
        check(
          `limits at ${LOW_IN_FLIGHT} / ${HIGH_IN_FLIGHT} / ${LOW_IN_FLIGHT} in flight`,
          "",
          [initial, up.at(-1)?.limits ?? [], down.at(-1)?.limits ?? []].map(formatLimits).join(" / ")
        )
      ],
      notes: [
        `settle: servers not pinned; a fresh pool, ${LOW_IN_FLIGHT} in flight for ${BEFORE_MS} ms, then ${CYCLES} cycles of ${HIGH_IN_FLIGHT} and ${LOW_IN_FLIGHT} in flight for ${OBSERVE_MS} ms each; limits sampled every ${SAMPLE_EVERY_MS} ms; settled = from the first sample after which every connection's limit stays within ±${TOLERANCE * 100} % of its last value (same connections, none being opened), for at least ${STABLE_MS} ms`,
        ...(up.concat(down).some((settle) => !settle.settled && settle.reason === "no concurrencyLimit")
          ? ["settle: the pool does not report concurrencyLimit on its connections: not measurable"]
          : []),
        ...(failed > 0 ? [`settle: ${failed} calls failed`] : [])
      ]
    }
  } finally {
    await Promise.allSettled([manager?.close()])
  }
}
