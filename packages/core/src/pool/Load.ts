/**
 * How busy this process's event loop and this machine's cores were lately, for the growth of
 * adaptive pools (see `Growth`): read every {@link SAMPLE_MS} by a timer that does not keep the
 * process alive, and that stops once nobody asked for {@link IDLE_AFTER_MS}, or once the last
 * pool that could ask has closed.
 */
import { cpus } from "node:os"

/** How often the load is read. */
export const SAMPLE_MS = 200
/** The timer stops once nobody asked for this long, and starts again on the next question. */
const IDLE_AFTER_MS = 5_000

/** The load over the last {@link SAMPLE_MS}; `undefined` until the first reading after a start. */
export interface Load {
  /** Share of the time this process's event loop was busy (0..1). */
  readonly loop: number
  /** Cores of this machine that were idle (0..cores), as the operating system counts them. */
  readonly idleCores: number
}

/** The CPU time (ms) of this machine's cores so far: idle, and all; `undefined` where the OS does not tell. */
const cpuTimes = (): { readonly idle: number; readonly total: number; readonly cores: number } | undefined => {
  const all = cpus()
  if (all.length === 0) return undefined
  let idle = 0
  let total = 0
  for (const cpu of all) {
    const t = cpu.times
    idle += t.idle
    total += t.user + t.nice + t.sys + t.idle + t.irq
  }
  return { idle, total, cores: all.length }
}

interface Sampler {
  readonly timer: NodeJS.Timeout
  loop: ReturnType<typeof performance.eventLoopUtilization>
  cpu: ReturnType<typeof cpuTimes>
  load: Load | undefined
  askedAt: number
}

let sampler: Sampler | undefined = undefined

const read = (current: Sampler): void => {
  if (performance.now() - current.askedAt > IDLE_AFTER_MS) {
    stop()
    return
  }
  const loop = performance.eventLoopUtilization()
  const cpu = cpuTimes()
  const before = current.cpu
  const spent = cpu !== undefined && before !== undefined ? cpu.total - before.total : 0
  current.load = {
    loop: performance.eventLoopUtilization(loop, current.loop).utilization,
    idleCores:
      cpu !== undefined && before !== undefined && spent > 0
        ? ((cpu.idle - before.idle) / spent) * cpu.cores
        : Number.POSITIVE_INFINITY
  }
  current.loop = loop
  current.cpu = cpu
}

/** The pools that may ask: the timer stops when the last one closes. */
let holders = 0

const stop = (): void => {
  if (sampler === undefined) return
  clearInterval(sampler.timer)
  sampler = undefined
}

/** A pool that may ask for the load holds the sampler until it closes; answers its release. */
export const hold = (): (() => void) => {
  holders++
  let released = false
  return () => {
    if (released) return
    released = true
    holders--
    if (holders === 0) stop()
  }
}

/** The load over the last {@link SAMPLE_MS}: `undefined` for the first of them after a quiet spell. */
export const recentLoad = (now: number): Load | undefined => {
  if (sampler === undefined) {
    const timer = setInterval(() => {
      if (sampler !== undefined) read(sampler)
    }, SAMPLE_MS)
    timer.unref()
    sampler = { timer, loop: performance.eventLoopUtilization(), cpu: cpuTimes(), load: undefined, askedAt: now }
    return undefined
  }
  sampler.askedAt = now
  return sampler.load
}

/** Whether the timer runs now. */
export const sampling = (): boolean => sampler !== undefined
