/**
 * Measurement loops: sequential latency samples, closed-loop throughput at a fixed number of
 * calls in flight, and alternating rounds so that two subjects share the same machine noise.
 */

/** One call to measure; it resolves when the call has its answer. */
export type Call = () => Promise<unknown>

/** Runs `count` calls one after another and answers each call's latency in ms. */
export const sequential = async (call: Call, count: number): Promise<Array<number>> => {
  const latencies: Array<number> = []
  for (let i = 0; i < count; i++) {
    const started = performance.now()
    await call()
    latencies.push(performance.now() - started)
  }
  return latencies
}

/** The outcome of a throughput run. */
export interface Throughput {
  readonly calls: number
  readonly failed: number
  readonly elapsedMs: number
  readonly callsPerSecond: number
  /** CPU time (user + system) this process spent per call, in µs: the client side's cost of a call. */
  readonly cpuMicrosPerCall: number
  /** Each call's latency in ms, from its own start. */
  readonly latencies: ReadonlyArray<number>
}

/** The outcome of `total` calls that began at `started` (performance.now) with CPU usage `cpu`. */
const throughputOf = (
  total: number,
  failed: number,
  started: number,
  cpu: NodeJS.CpuUsage,
  latencies: ReadonlyArray<number>
): Throughput => {
  const elapsedMs = performance.now() - started
  const used = process.cpuUsage(cpu)
  return {
    calls: total,
    failed,
    elapsedMs,
    callsPerSecond: (total / elapsedMs) * 1000,
    cpuMicrosPerCall: (used.user + used.system) / total,
    latencies
  }
}

/**
 * Runs `total` calls with `inFlight` of them outstanding at any time (each worker starts its
 * next call as soon as its previous one ends) and answers the rate. A failed call counts.
 */
export const closedLoop = async (call: Call, inFlight: number, total: number): Promise<Throughput> => {
  let issued = 0
  let failed = 0
  const latencies: Array<number> = []
  const worker = async (): Promise<void> => {
    while (issued < total) {
      issued++
      const started = performance.now()
      try {
        await call()
      } catch {
        failed++
      }
      latencies.push(performance.now() - started)
    }
  }
  const cpu = process.cpuUsage()
  const started = performance.now()
  await Promise.all(Array.from({ length: Math.min(inFlight, total) }, worker))
  return throughputOf(total, failed, started, cpu, latencies)
}

/** Starts `total` calls at once and waits for all of them; latencies run from the common start. */
export const allAtOnce = async (call: Call, total: number): Promise<Throughput> => {
  let failed = 0
  const latencies: Array<number> = []
  const cpu = process.cpuUsage()
  const started = performance.now()
  await Promise.all(
    Array.from({ length: total }, async () => {
      try {
        await call()
      } catch {
        failed++
      }
      latencies.push(performance.now() - started)
    })
  )
  return throughputOf(total, failed, started, cpu, latencies)
}

/**
 * Runs every subject once per round for `rounds` rounds, rotating which goes first, and
 * answers each subject's results in round order. Interleaving puts the same background load
 * on every subject, so a ratio of two subjects means something on a busy machine.
 */
export const alternate = async <K extends string, T>(
  rounds: number,
  subjects: Readonly<Record<K, (round: number) => Promise<T>>>
): Promise<Record<K, Array<T>>> => {
  const keys = Object.keys(subjects) as Array<K>
  const results = Object.fromEntries(keys.map((key) => [key, [] as Array<T>])) as Record<K, Array<T>>
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < keys.length; i++) {
      const key = keys[(i + round) % keys.length]
      if (key === undefined) continue
      results[key].push(await subjects[key](round))
    }
  }
  return results
}

/** Resolves after `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Runs the garbage collector until the heap stops shrinking and answers `heapUsed` in bytes. */
export const settledHeap = async (gc: () => void): Promise<number> => {
  let previous = Number.POSITIVE_INFINITY
  for (let i = 0; i < 6; i++) {
    // Let pending callbacks and finalizers run between collections.
    await sleep(10)
    gc()
    const used = process.memoryUsage().heapUsed
    if (used >= previous - 1024) return used
    previous = used
  }
  return process.memoryUsage().heapUsed
}
