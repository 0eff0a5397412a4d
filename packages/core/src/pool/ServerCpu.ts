/**
 * How much of a core a stdio server's processes used lately, read from the Linux process table:
 * a server whose processes compute gains nothing from another process once the cores are busy,
 * even before its requests run slower (see `Growth.sharesBusyCores`). Each process counts with
 * its descendants (a server started through `npx` or a shell computes in a child). Elsewhere
 * than on Linux nothing is read, and growth goes by the requests' slowdown alone.
 */
import { readFileSync } from "node:fs"
import { cpus } from "node:os"
import { isLinux } from "../internal/processTree.js"

/** The shortest time between two readings (ms): a tick of CPU time is 10 ms. */
export const READING_MS = 250
/** A reading older than this only starts the next one (ms). */
const STALE_AFTER_MS = 4 * READING_MS
/**
 * From this share of what a process can get of the cores (a whole core, or its part of them
 * where there are more processes than cores), a server's processes compute.
 */
export const COMPUTES = 0.5
/** Clock ticks per second of `/proc/<pid>/stat` (`USER_HZ`, 100 on every Linux ABI Node runs on). */
const TICKS_PER_SECOND = 100
/** How deep descendants are followed (a shell, `npx`, then the server). */
const MAX_DEPTH = 4

/** The CPU time (ticks) `/proc/<pid>/stat` gives, user and system; `undefined` once it is gone. */
const ownTicks = (pid: number): number | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    // The name in parentheses may hold spaces: the fields count from after it.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return Number(fields[11]) + Number(fields[12])
  } catch {
    return undefined
  }
}

/** The children of `pid` (those its main thread started). */
const childrenOf = (pid: number): ReadonlyArray<number> => {
  try {
    const listed = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim()
    return listed === "" ? [] : listed.split(" ").map(Number)
  } catch {
    return []
  }
}

/** The CPU time (ticks) of `pid` and its descendants; `undefined` once `pid` is gone. */
export const treeTicks = (pid: number, depth = 0): number | undefined => {
  const own = ownTicks(pid)
  if (own === undefined || depth >= MAX_DEPTH) return own
  let sum = own
  for (const child of childrenOf(pid)) sum += treeTicks(child, depth + 1) ?? 0
  return sum
}

/** What one pool reads of its server's processes. */
export class ServerCpu {
  private readonly ticks = new Map<number, number>()
  private at = Number.NEGATIVE_INFINITY
  /** No process of the server could be read (a `/proc` that hides them): nothing will be known. */
  private unreadable: boolean

  constructor(
    /** The CPU time (ticks) of a process and its descendants (see {@link treeTicks}). */
    private readonly ticksOf: (pid: number) => number | undefined = treeTicks,
    readable: boolean = isLinux,
    /** This machine's cores. */
    private readonly cores: number = cpus().length
  ) {
    this.unreadable = !readable
  }
  /**
   * The mean share of a core (0..) that each process read twice in a row used between the last
   * two readings close enough together; kept through a quiet spell (a server does not change its
   * nature), `undefined` until then.
   */
  share: number | undefined = undefined
  /** How many processes the share is the mean of. */
  private processes = 1

  /** Whether a reading would be taken at `now`: the processes can be read, the last is old enough. */
  due(now: number): boolean {
    return !this.unreadable && now - this.at >= READING_MS
  }

  /**
   * Reads the processes `pids` (at most every {@link READING_MS}); `now` in ms. `busySince`:
   * since when the processes have had work without a break (borrowers in line); a reading from
   * before then spans a quiet spell, and only starts the next.
   */
  read(pids: Iterable<number>, now: number, busySince: number = Number.NEGATIVE_INFINITY): void {
    if (!this.due(now)) return
    // After a quiet spell the previous reading says nothing of now: it only starts the next.
    const fresh = now - this.at <= STALE_AFTER_MS && this.at >= busySince
    let used = 0
    let counted = 0
    let tried = 0
    const seen = new Set<number>()
    for (const pid of pids) {
      tried++
      const ticks = this.ticksOf(pid)
      if (ticks === undefined) continue
      seen.add(pid)
      const before = this.ticks.get(pid)
      this.ticks.set(pid, ticks)
      if (before === undefined) continue
      used += (ticks - before) / TICKS_PER_SECOND
      counted++
    }
    if (tried > 0 && seen.size === 0) this.unreadable = true
    for (const pid of this.ticks.keys()) if (!seen.has(pid)) this.ticks.delete(pid)
    if (fresh && counted > 0) {
      this.share = used / counted / ((now - this.at) / 1000)
      this.processes = counted
    }
    this.at = now
  }

  /**
   * Whether the server's processes compute (see {@link COMPUTES}): `undefined` between the first
   * reading of a process and the second, `false` where none can be read (or none was given).
   */
  computes(): boolean | undefined {
    // Eight processes that compute on 2 cores get a quarter of a core each.
    if (this.share !== undefined) return this.share >= COMPUTES * Math.min(1, this.cores / this.processes)
    return this.unreadable || this.ticks.size === 0 ? false : undefined
  }
}
