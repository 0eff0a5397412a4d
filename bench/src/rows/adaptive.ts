/**
 * Row 11: the pool on its default settings (no `maxConcurrentRequestsPerConnection` given, so the
 * adaptive per-connection limit where it is the default) against what each load would otherwise
 * get: `echo` at 100 in flight and a CPU-bound tool against one raw SDK client, a one-at-a-time
 * server against a pool fixed at one request per connection, and how soon the limits settle.
 */
import { createMcpConnectionManager, type MCPConnectionManagerPromise, type MCPConnectionPool } from "@mcp-pool/core"
import type { PooledMCPToolsPromise } from "@mcp-pool/core/PooledMCPTools"
import { fixtureStdioConfig } from "@mcp-pool/test-servers"
import type { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { spawnSync } from "node:child_process"
import { availableParallelism } from "node:os"
import { alternate, type Call, closedLoop, sequential, sleep, type Throughput } from "../measure.ts"
import { allPassed, check, type Check, type RowDefinition } from "../row.ts"
import { formatMs, formatRate, formatRatio, median, percentile, ratio, round, summarize } from "../stats.ts"
import { connectRaw, echoParams, fixtureManager, type Launch, pinnedLaunch, poolOf, SERVER } from "../subjects.ts"

/**
 * 1. `echo`, as in row 2: both sides warmed until V8 has optimised them, rounds of about 150 ms
 * at row 2's rates. Both are also bounded in time, so that a slow side cannot take the row past
 * its time: the warm-up goes in chunks until 30,000 calls or 3 s (or up to 6 s while the pool
 * is still opening connections), the rounds stop after 10 s of measuring once 3 of them are done.
 */
const ECHO_IN_FLIGHT = 100
const ECHO_WARM_UP_CALLS = 30_000
const ECHO_WARM_UP_CHUNK = 3000
const ECHO_WARM_UP_MS = 3000
/** The warm-up goes on past 3 s, up to this, while the pool is still opening connections. */
const ECHO_WARM_UP_MAX_MS = 6000
const ECHO_ROUNDS = 12
const ECHO_MIN_ROUNDS = 3
const ECHO_ROUNDS_MS = 10_000
const ECHO_CALLS_PER_ROUND = 12_000
const MIN_ECHO_RATIO = 0.9

/** 2. The CPU-bound `cpu` tool, as in row 4 (servers not pinned: the point is using every core). */
const CPU_MS = 3
const CPU_IN_FLIGHT = 8
const CPU_ROUNDS = 4
const CPU_CALLS_PER_ROUND = 200
/** Calls per side before measuring: the pool's limits and connections settle, the servers warm. */
const CPU_WARM_UP_CALLS = { raw: 100, raw2: 200, pooled: 600 } as const
const MIN_CPU_RATIO = 1.8
const cpuParams = { name: "cpu", arguments: { ms: CPU_MS } }

/** 3. A server that runs one request at a time (`--serial`), called by a mix of short and long calls. */
const SERIAL_FLAG = "--serial"
const SERIAL_CALLERS = 8
const FAST_MS = 1
const SLOW_MS = 200
/** Each caller's every 10th call is a slow one (offset by the caller's index). */
const SLOW_EVERY = 10
/**
 * Each side is warmed with the load until its pool stops opening connections: in stretches of
 * 500 ms, at least 1.5 s, until it has opened none for 1 s, at most 6 s (on a loaded 2-core
 * machine a pool took 4 s to reach 8 connections, and the first rounds' p99 was theirs).
 */
const SERIAL_WARM_UP_STEP_MS = 500
const SERIAL_WARM_UP_MIN_MS = 1500
const SERIAL_WARM_UP_STEADY_MS = 1000
const SERIAL_WARM_UP_MAX_MS = 6000
const SERIAL_ROUNDS = 3
const SERIAL_ROUND_MS = 2000
const MAX_P99_RATIO = 1.2
const fastParams = { name: "sleep", arguments: { ms: FAST_MS } }
const slowParams = { name: "sleep", arguments: { ms: SLOW_MS } }

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
const MAX_SETTLE_MS = 2000

/** The managers under test: only the server and `maxConcurrentRequestsPerConnection: "auto"` are given. */
const defaultManager = (launch: Launch): Promise<MCPConnectionManagerPromise> =>
  createMcpConnectionManager({
    servers: { [SERVER]: { command: launch.command, args: [...launch.args] } },
    defaults: { maxConcurrentRequestsPerConnection: "auto" }
  })

/** The `MCP_POOL_*` variables set in this environment: they would change the defaults measured. */
const poolVariables = (): ReadonlyArray<string> => Object.keys(process.env).filter((key) => key.startsWith("MCP_POOL_"))

/** A connection's `concurrencyLimit`. */
const limitOf = (connection: { readonly concurrencyLimit: number }): number => connection.concurrencyLimit

/** Each open connection's limit by connection id, in id order. */
const limitsOf = (pool: MCPConnectionPool.MCPConnectionPool): ReadonlyArray<readonly [number, number | undefined]> =>
  pool
    .snapshot()
    .connections.filter((info) => info.alive)
    .map((info) => [info.id, limitOf(info)] as const)
    .toSorted(([a], [b]) => a - b)

const reported = (limits: ReadonlyArray<readonly [number, number | undefined]>): boolean =>
  limits.every(([, limit]) => limit !== undefined)

/** `3 conn.: 12, 9, 1`, or `3 conn.: limit n/a` while the pool does not report limits. */
const formatLimits = (limits: ReadonlyArray<readonly [number, number | undefined]>): string => {
  const values = limits.map(([, limit]) => limit)
  const shown =
    values.length === 0
      ? "-"
      : !reported(limits)
        ? "limit n/a"
        : values.every((limit) => limit === values[0])
          ? `${values[0]} each`
          : values.join(", ")
  return `${limits.length} conn.: ${shown}`
}

/** The limits as `results.json` records them. */
const limitsJson = (limits: ReadonlyArray<readonly [number, number | undefined]>) =>
  limits.map(([id, limit]) => ({ id, limit: limit ?? null }))

/** The rates of the middle half of a side's rounds, as `71,000-84,000 calls/s` (as in row 2). */
const middleHalf = (rounds: ReadonlyArray<Throughput>): string => {
  const rates = rounds.map((t) => t.callsPerSecond)
  return `${Math.round(percentile(rates, 25)).toLocaleString("en-US")}-${formatRate(percentile(rates, 75))}`
}

/**
 * `alternate`, round by round, for up to `rounds` rounds: it stops once `budgetMs` have passed
 * and at least `minRounds` are done. Each round rotates which subject goes first, as `alternate` does.
 */
const alternateWithin = async <K extends string, T>(
  rounds: number,
  minRounds: number,
  budgetMs: number,
  subjects: Readonly<Record<K, () => Promise<T>>>
): Promise<Record<K, Array<T>>> => {
  const keys = Object.keys(subjects) as Array<K>
  const results = Object.fromEntries(keys.map((key) => [key, [] as Array<T>])) as Record<K, Array<T>>
  const started = performance.now()
  for (let index = 0; index < rounds; index++) {
    if (index >= minRounds && performance.now() - started >= budgetMs) break
    const order = keys.map((_, i) => keys[(i + index) % keys.length]).filter((key): key is K => key !== undefined)
    const once = await alternate(1, Object.fromEntries(order.map((key) => [key, subjects[key]])) as typeof subjects)
    for (const key of keys) results[key].push(...once[key])
  }
  return results
}

const failedIn = (rounds: ReadonlyArray<Throughput>): number => rounds.reduce((sum, t) => sum + t.failed, 0)

/** What one measurement adds to the row. */
interface Part {
  readonly baseline: Readonly<Record<string, unknown>>
  readonly subject: Readonly<Record<string, unknown>>
  readonly checks: ReadonlyArray<Check>
  readonly notes: ReadonlyArray<string>
}

/** 1. `echo` at 100 in flight: the pool with "auto" against one raw SDK client. */
const echoPart = async (): Promise<Part & { readonly ratio: number | null }> => {
  let manager: MCPConnectionManagerPromise | undefined
  let client: Client | undefined
  try {
    // Every server on the same core (see pinnedLaunch), so that only the client side differs.
    const launch = pinnedLaunch()
    manager = await defaultManager(launch)
    client = await connectRaw(launch)
    const pool = await poolOf(manager)
    const tools = manager.tools(SERVER)
    const raw = client
    const calls = {
      raw: () => raw.callTool(echoParams),
      pooled: () => tools.callTool(echoParams)
    }
    const warmedWith = { raw: 0, pooled: 0 }
    for (const key of ["raw", "pooled"] as const) {
      await sequential(calls[key], 500)
      const started = performance.now()
      const warming = () => {
        const elapsed = performance.now() - started
        const opening = key === "pooled" && pool.snapshot().openingConnections > 0
        return (
          (warmedWith[key] < ECHO_WARM_UP_CALLS && elapsed < ECHO_WARM_UP_MS) ||
          (opening && elapsed < ECHO_WARM_UP_MAX_MS)
        )
      }
      while (warming()) {
        await closedLoop(calls[key], ECHO_IN_FLIGHT, ECHO_WARM_UP_CHUNK)
        warmedWith[key] += ECHO_WARM_UP_CHUNK
      }
    }
    const rounds = await alternateWithin(ECHO_ROUNDS, ECHO_MIN_ROUNDS, ECHO_ROUNDS_MS, {
      raw: () => closedLoop(calls.raw, ECHO_IN_FLIGHT, ECHO_CALLS_PER_ROUND),
      pooled: () => closedLoop(calls.pooled, ECHO_IN_FLIGHT, ECHO_CALLS_PER_ROUND)
    })
    const limits = limitsOf(pool)
    const rawRate = median(rounds.raw.map((t) => t.callsPerSecond))
    const pooledRate = median(rounds.pooled.map((t) => t.callsPerSecond))
    const rawCpu = median(rounds.raw.map((t) => t.cpuMicrosPerCall))
    const pooledCpu = median(rounds.pooled.map((t) => t.cpuMicrosPerCall))
    const failed = failedIn(rounds.raw) + failedIn(rounds.pooled)
    const rateRatio = ratio(pooledRate, rawRate)
    const pass = rateRatio !== null && rateRatio >= MIN_ECHO_RATIO && failed === 0
    return {
      ratio: rateRatio,
      baseline: {
        echo: {
          label: "one raw SDK Client (stdio)",
          callsPerSecond: Math.round(rawRate),
          cpuMicrosPerCall: round(rawCpu, 1)
        }
      },
      subject: {
        echo: {
          label: `pool with "auto" (Promise API)`,
          maxConcurrentRequestsPerConnection: pool.config.maxConcurrentRequestsPerConnection,
          callsPerSecond: Math.round(pooledRate),
          cpuMicrosPerCall: round(pooledCpu, 1),
          connectionLimits: limitsJson(limits)
        }
      },
      checks: [
        check(
          `echo, ${ECHO_IN_FLIGHT} in flight: throughput`,
          formatRate(rawRate),
          formatRate(pooledRate),
          formatRatio(rateRatio),
          `>= ${MIN_ECHO_RATIO.toFixed(2)}x`,
          pass
        ),
        check("echo: throughput, middle half of rounds", middleHalf(rounds.raw), middleHalf(rounds.pooled)),
        check(
          "echo: client CPU per call",
          `${rawCpu.toFixed(1)} µs`,
          `${pooledCpu.toFixed(1)} µs`,
          formatRatio(ratio(pooledCpu, rawCpu))
        ),
        check("echo: pool's connections after", "1 client", formatLimits(limits))
      ],
      notes: [
        `echo: ${launch.command === "taskset" ? `every server pinned to CPU ${launch.args[1]}` : "servers not pinned (no taskset)"}; after ${warmedWith.raw} (raw) and ${warmedWith.pooled} (pool) warm-up calls; median of ${rounds.raw.length} alternating rounds of ${ECHO_CALLS_PER_ROUND} calls${rounds.raw.length < ECHO_ROUNDS ? ` (of ${ECHO_ROUNDS}: cut at ${ECHO_ROUNDS_MS / 1000} s)` : ""}`,
        ...(failed > 0 ? [`echo: ${failed} calls failed`] : [])
      ]
    }
  } finally {
    await Promise.allSettled([manager?.close(), client?.close()])
  }
}

/** 2. The CPU-bound tool at 8 in flight: the pool with "auto" against one raw client (and two). */
const cpuPart = async (): Promise<Part> => {
  let manager: MCPConnectionManagerPromise | undefined
  const clients: Array<Client> = []
  try {
    const launch = fixtureStdioConfig()
    manager = await defaultManager(launch)
    clients.push(await connectRaw(launch), await connectRaw(launch))
    const [raw, second] = clients
    if (raw === undefined || second === undefined) throw new Error("raw clients missing")
    const pool = await poolOf(manager)
    const tools = manager.tools(SERVER)
    let turn = 0
    const calls = {
      raw: () => raw.callTool(cpuParams),
      // What this machine gives two server processes: two raw clients taking turns (as in row 4).
      raw2: () => (turn++ % 2 === 0 ? raw : second).callTool(cpuParams),
      pooled: () => tools.callTool(cpuParams)
    }
    for (const key of ["raw", "raw2", "pooled"] as const) {
      await closedLoop(calls[key], CPU_IN_FLIGHT, CPU_WARM_UP_CALLS[key])
    }
    const run = (call: Call) => () => closedLoop(call, CPU_IN_FLIGHT, CPU_CALLS_PER_ROUND)
    const rounds = await alternate(CPU_ROUNDS, {
      raw: run(calls.raw),
      raw2: run(calls.raw2),
      pooled: run(calls.pooled)
    })
    const limits = limitsOf(pool)
    const rate = (key: keyof typeof rounds) => median(rounds[key].map((t) => t.callsPerSecond))
    const rates = { raw: rate("raw"), raw2: rate("raw2"), pooled: rate("pooled") }
    const failed = failedIn(rounds.raw) + failedIn(rounds.raw2) + failedIn(rounds.pooled)
    const scale = ratio(rates.pooled, rates.raw)
    const pass = scale !== null && scale >= MIN_CPU_RATIO && failed === 0
    return {
      baseline: {
        cpu: {
          label: `one raw SDK client, cpu ${CPU_MS} ms, ${CPU_IN_FLIGHT} in flight`,
          callsPerSecond: Math.round(rates.raw),
          twoRawClientsCallsPerSecond: Math.round(rates.raw2)
        }
      },
      subject: {
        cpu: {
          label: `pool with "auto", cpu ${CPU_MS} ms, ${CPU_IN_FLIGHT} in flight`,
          callsPerSecond: Math.round(rates.pooled),
          connectionLimits: limitsJson(limits),
          cores: availableParallelism()
        }
      },
      checks: [
        check(
          `cpu ${CPU_MS} ms, ${CPU_IN_FLIGHT} in flight: throughput`,
          formatRate(rates.raw),
          formatRate(rates.pooled),
          formatRatio(scale),
          `>= ${MIN_CPU_RATIO.toFixed(2)}x`,
          pass
        ),
        check(
          "cpu: 2 raw clients (machine)",
          formatRate(rates.raw),
          formatRate(rates.raw2),
          formatRatio(ratio(rates.raw2, rates.raw))
        ),
        check("cpu: pool's connections after", "1 client", formatLimits(limits))
      ],
      notes: [
        `cpu: servers not pinned; ${availableParallelism()} cores; median of ${CPU_ROUNDS} alternating rounds of ${CPU_CALLS_PER_ROUND} calls per subject; "2 raw clients" shows what this machine gives two server processes`,
        ...(failed > 0 ? [`cpu: ${failed} calls failed`] : [])
      ]
    }
  } finally {
    await Promise.allSettled([manager?.close(), ...clients.map((client) => client.close())])
  }
}

/** What one round of the mixed load on the serial server measured. */
interface Mix {
  /** Latencies of the 1 ms calls, in ms. */
  readonly fast: ReadonlyArray<number>
  /** Latencies of the 200 ms calls, in ms. */
  readonly slow: ReadonlyArray<number>
  readonly failed: number
}

/** 8 callers, each calling one after another for `durationMs`: every 10th call a slow one. */
const mixedLoad = async (tools: PooledMCPToolsPromise, durationMs: number): Promise<Mix> => {
  const fast: Array<number> = []
  const slow: Array<number> = []
  let failed = 0
  const deadline = performance.now() + durationMs
  const caller = async (index: number): Promise<void> => {
    for (let n = 0; performance.now() < deadline; n++) {
      const isSlow = (n + index) % SLOW_EVERY === 0
      const started = performance.now()
      try {
        await tools.callTool(isSlow ? slowParams : fastParams)
        ;(isSlow ? slow : fast).push(performance.now() - started)
      } catch {
        failed++
      }
    }
  }
  await Promise.all(Array.from({ length: SERIAL_CALLERS }, (_, index) => caller(index)))
  return { fast, slow, failed }
}

/**
 * Runs the mixed load on `tools` until `pool` has neither opened nor been opening a connection
 * for 1 s (at least 1.5 s, at most 6 s) and answers how long it ran, in ms.
 */
const warmUntilSteady = async (
  tools: PooledMCPToolsPromise,
  pool: MCPConnectionPool.MCPConnectionPool
): Promise<number> => {
  const started = performance.now()
  const opening = { seen: false }
  const watch = setInterval(() => {
    if (pool.snapshot().openingConnections > 0) opening.seen = true
  }, 20)
  let count = pool.connections().length
  let steadySince = started
  try {
    for (;;) {
      opening.seen = pool.snapshot().openingConnections > 0
      await mixedLoad(tools, SERIAL_WARM_UP_STEP_MS)
      const now = performance.now()
      const current = pool.connections().length
      if (current !== count || opening.seen || pool.snapshot().openingConnections > 0) {
        count = current
        steadySince = now
      }
      const elapsed = now - started
      if (elapsed >= SERIAL_WARM_UP_MAX_MS) return elapsed
      if (elapsed >= SERIAL_WARM_UP_MIN_MS && now - steadySince >= SERIAL_WARM_UP_STEADY_MS) return elapsed
    }
  } finally {
    clearInterval(watch)
  }
}

/** Whether the fixture server takes `--serial`: an unknown argument makes it exit with code 2 before `--help`. */
const hasSerialFlag = (): boolean => {
  const launch = fixtureStdioConfig([SERIAL_FLAG, "--help"])
  return spawnSync(launch.command, [...launch.args], { stdio: "ignore", timeout: 15_000 }).status === 0
}

/** 3. A one-at-a-time server, short and long calls mixed: the defaults against a pool fixed at 1 per connection. */
const serialPart = async (): Promise<Part> => {
  const metric = `serial server, ${FAST_MS} ms calls' p99`
  const target = `<= ${MAX_P99_RATIO.toFixed(2)}x`
  if (!hasSerialFlag()) {
    return {
      baseline: {},
      subject: {},
      checks: [check(metric, "n/a", "n/a", "", target, false)],
      notes: [`serial: not measured: the fixture server does not take ${SERIAL_FLAG} (yet)`]
    }
  }
  let automatic: MCPConnectionManagerPromise | undefined
  let fixed: MCPConnectionManagerPromise | undefined
  try {
    const launch = fixtureStdioConfig([SERIAL_FLAG])
    automatic = await defaultManager(launch)
    const pool = await poolOf(automatic)
    const maxConnections = pool.config.maxConnections
    fixed = await fixtureManager({ maxConnections, maxConcurrentRequestsPerConnection: 1 }, launch)
    const fixedPool = await poolOf(fixed)
    const tools = { auto: automatic.tools(SERVER), fixed: fixed.tools(SERVER) }
    // Each pool opens the connections the load needs, and its limits settle.
    const warmedFor = {
      auto: await warmUntilSteady(tools.auto, pool),
      fixed: await warmUntilSteady(tools.fixed, fixedPool)
    }
    const rounds = await alternate(SERIAL_ROUNDS, {
      fixed: () => mixedLoad(tools.fixed, SERIAL_ROUND_MS),
      auto: () => mixedLoad(tools.auto, SERIAL_ROUND_MS)
    })
    const limits = limitsOf(pool)
    const fixedConnections = fixedPool.connections().length
    const side = (mixes: ReadonlyArray<Mix>) => ({
      fast: summarize(mixes.flatMap((mix) => mix.fast)),
      fastP99MsPerRound: mixes.map((mix) => round(summarize(mix.fast).p99Ms, 2)),
      slow: summarize(mixes.flatMap((mix) => mix.slow)),
      failed: mixes.reduce((sum, mix) => sum + mix.failed, 0)
    })
    const fixedSide = side(rounds.fixed)
    const autoSide = side(rounds.auto)
    const p99Ratio = ratio(autoSide.fast.p99Ms, fixedSide.fast.p99Ms)
    const pass = p99Ratio !== null && p99Ratio <= MAX_P99_RATIO && fixedSide.failed + autoSide.failed === 0
    return {
      baseline: {
        serial: {
          label: `pool fixed at maxConcurrentRequestsPerConnection 1, maxConnections ${maxConnections}, ${SERVER} ${SERIAL_FLAG}`,
          ...fixedSide,
          connections: fixedConnections
        }
      },
      subject: {
        serial: {
          label: `pool with "auto" (maxConnections ${maxConnections}), ${SERVER} ${SERIAL_FLAG}`,
          ...autoSide,
          connectionLimits: limitsJson(limits)
        }
      },
      checks: [
        check(
          metric,
          formatMs(fixedSide.fast.p99Ms),
          formatMs(autoSide.fast.p99Ms),
          formatRatio(p99Ratio),
          target,
          pass
        ),
        check(
          `serial: ${FAST_MS} ms calls' p50`,
          formatMs(fixedSide.fast.p50Ms),
          formatMs(autoSide.fast.p50Ms),
          formatRatio(ratio(autoSide.fast.p50Ms, fixedSide.fast.p50Ms))
        ),
        check(
          `serial: ${SLOW_MS} ms calls' p99`,
          formatMs(fixedSide.slow.p99Ms),
          formatMs(autoSide.slow.p99Ms),
          formatRatio(ratio(autoSide.slow.p99Ms, fixedSide.slow.p99Ms))
        ),
        check(
          "serial: calls (fast + slow)",
          `${fixedSide.fast.samples} + ${fixedSide.slow.samples}`,
          `${autoSide.fast.samples} + ${autoSide.slow.samples}`,
          formatRatio(
            ratio(autoSide.fast.samples + autoSide.slow.samples, fixedSide.fast.samples + fixedSide.slow.samples)
          )
        ),
        check("serial: pool's connections after", `${fixedConnections} conn.: 1 each`, formatLimits(limits))
      ],
      notes: [
        `serial: ${SERIAL_CALLERS} callers, each calling sleep ${FAST_MS} ms with every ${SLOW_EVERY}th call sleep ${SLOW_MS} ms; servers not pinned; after ${formatMs(warmedFor.fixed)} (fixed) and ${formatMs(warmedFor.auto)} (auto) of warm-up with the load; ${SERIAL_ROUNDS} alternating rounds of ${SERIAL_ROUND_MS} ms per side`,
        ...(fixedSide.failed + autoSide.failed > 0
          ? [`serial: ${fixedSide.failed} (fixed) and ${autoSide.failed} (auto) calls failed`]
          : [])
      ]
    }
  } finally {
    await Promise.allSettled([automatic?.close(), fixed?.close()])
  }
}

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
const settlePart = async (): Promise<Part> => {
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

export const row: RowDefinition = {
  id: 11,
  name: "adaptive concurrency (auto) with no other tuning",
  target: `echo at ${ECHO_IN_FLIGHT} in flight >= ${MIN_ECHO_RATIO.toFixed(1)}x one raw client; cpu >= ${MIN_CPU_RATIO.toFixed(1)}x one raw client (2 cores); on a serial server, ${FAST_MS} ms calls' p99 <= ${MAX_P99_RATIO.toFixed(1)}x a pool fixed at 1 per connection; limits settle in <= ${formatMs(MAX_SETTLE_MS)}`,
  run: async () => {
    const echo = await echoPart()
    const parts = [echo, await cpuPart(), await serialPart(), await settlePart()]
    const variables = poolVariables()
    const checks = parts.flatMap((part) => part.checks)
    return {
      baseline: {
        label: "one raw SDK client; a pool fixed at 1 request per connection",
        ...Object.fromEntries(parts.flatMap((part) => Object.entries(part.baseline)))
      },
      subject: {
        label: "pool with the default settings",
        ...Object.fromEntries(parts.flatMap((part) => Object.entries(part.subject)))
      },
      ratioOf: `echo throughput at ${ECHO_IN_FLIGHT} in flight, pool with "auto" / one raw client`,
      ratio: echo.ratio === null ? null : round(echo.ratio, 3),
      target: row.target,
      pass: allPassed(checks.map((c) => (c.target === "" ? null : c.pass))),
      checks,
      notes: [
        ...parts.flatMap((part) => part.notes),
        ...(variables.length > 0 ? [`set in the environment, changing the defaults: ${variables.join(", ")}`] : [])
      ]
    }
  }
}
