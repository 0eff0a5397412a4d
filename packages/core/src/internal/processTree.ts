/**
 * Reading the Linux process table (`/proc`): which process groups still have living members, and
 * which descendants of a server left its process group, so that they can be ended with it.
 */
import { readdirSync, readFileSync } from "node:fs"
import { readdir } from "node:fs/promises"
import { setImmediate as nextTurn } from "node:timers/promises"

/** Whether `/proc` can be read; elsewhere descendants that left the group are not collected. */
export const isLinux = process.platform === "linux"

/** The `code` of a Node system error, if it is one. */
export const errnoCode = (error: unknown): string | undefined =>
  error instanceof Error && "code" in error && typeof error.code === "string" ? error.code : undefined

/** Process-table entries read between two turns of the event loop. */
const SCAN_CHUNK = 64

/** One process as its `/proc/<pid>/stat` shows it. */
export interface ProcStat {
  /** Its process id. */
  readonly pid: number
  /** The id of its parent (init or a subreaper once its parent has exited). */
  readonly ppid: number
  /** The id of its process group. */
  readonly pgid: number
  /** The state letter; `Z` is a zombie, which has exited and only waits to be reaped. */
  readonly state: string
  /** When it started, in clock ticks since boot (field 22): with the pid, it names one process. */
  readonly startTime: string
}

/**
 * A process to end later, named so that a reused pid is never signalled: it is signalled only
 * while a process with its pid and start time still exists.
 */
export interface ProcessRef {
  /** Its process id. */
  readonly pid: number
  /** Its start time as collected (see {@link ProcStat}). */
  readonly startTime: string
  /** Whether it leads its own process group, which is then signalled as a whole. */
  readonly leadsGroup: boolean
}

/** The fields of a `/proc/<pid>/stat` line (the command, in parens, may hold spaces and parens). */
const parseStat = (pid: number, stat: string): ProcStat | undefined => {
  // After the command: state (field 3), ppid (4), pgrp (5), ... starttime (22).
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  const [state, ppid, pgid, startTime] = [fields[0], Number(fields[1]), Number(fields[2]), fields[19]]
  if (state === undefined || startTime === undefined || !Number.isInteger(ppid) || !Number.isInteger(pgid)) {
    return undefined
  }
  return { pid, ppid, pgid, state, startTime }
}

/**
 * The `/proc/<pid>/stat` of a process, or undefined when it has gone meanwhile. Synchronous:
 * `/proc` is answered from memory, and one read costs a few µs where an asynchronous one costs
 * a round trip through libuv's thread pool.
 */
export const readStat = (pid: number): ProcStat | undefined => {
  try {
    return parseStat(pid, readFileSync(`/proc/${pid}/stat`, "utf8"))
  } catch (error) {
    const code = errnoCode(error)
    if (code === "ENOENT" || code === "ESRCH") return undefined
    throw error
  }
}

const isPid = (name: string): boolean => {
  const first = name.charCodeAt(0)
  return first >= 48 && first <= 57
}

/** Every process in one pass over `/proc`, yielding to the event loop now and then. */
const readProcessTable = async (): Promise<ReadonlyArray<ProcStat>> => {
  const table: Array<ProcStat> = []
  let read = 0
  for (const name of await readdir("/proc")) {
    if (!isPid(name)) continue
    const stat = readStat(Number(name))
    if (stat !== undefined) table.push(stat)
    // A host with thousands of processes must not block the event loop for the whole pass.
    if (++read % SCAN_CHUNK === 0) await nextTurn()
  }
  return table
}

/** Every process in one synchronous pass over `/proc`, for the host's exit hook. */
export const readProcessTableSync = (): ReadonlyArray<ProcStat> => {
  const table: Array<ProcStat> = []
  for (const name of readdirSync("/proc")) {
    if (!isPid(name)) continue
    const stat = readStat(Number(name))
    if (stat !== undefined) table.push(stat)
  }
  return table
}

let pendingScan: Promise<ReadonlyArray<ProcStat>> | undefined

/**
 * The process table, from a pass over `/proc` that starts after this call. Groups that close at
 * the same time share one pass: callers that come before it starts join it.
 */
export const freshProcessTable = (): Promise<ReadonlyArray<ProcStat>> => {
  pendingScan ??= nextTurn().then(() => {
    pendingScan = undefined
    return readProcessTable()
  })
  return pendingScan
}

/** Whether the table holds a member of the group that is not a zombie. */
export const groupHasLiveMember = (table: ReadonlyArray<ProcStat>, pgid: number): boolean =>
  table.some((entry) => entry.pgid === pgid && entry.state !== "Z")

/**
 * The living descendants of the group's processes that are in another process group: children
 * spawned `detached`, or that called `setsid`, and everything below them. Found by parent id from
 * the group's leader (its pid is the pgid) and from every living member of the group, so that a
 * wrapper's child that left is found too. A process whose parent exited before this pass was
 * re-parented and cannot be found.
 */
export const escapedDescendants = (table: ReadonlyArray<ProcStat>, pgid: number): ReadonlyArray<ProcessRef> => {
  const children = new Map<number, Array<ProcStat>>()
  for (const entry of table) {
    const siblings = children.get(entry.ppid)
    if (siblings === undefined) children.set(entry.ppid, [entry])
    else siblings.push(entry)
  }
  const roots = [pgid, ...table.filter((entry) => entry.pgid === pgid && entry.pid !== pgid).map((entry) => entry.pid)]
  const seen = new Set<number>(roots)
  const escaped: Array<ProcessRef> = []
  const queue = [...roots]
  for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
    for (const child of children.get(next) ?? []) {
      if (seen.has(child.pid)) continue
      seen.add(child.pid)
      queue.push(child.pid)
      if (child.pgid !== pgid && child.state !== "Z") {
        escaped.push({ pid: child.pid, startTime: child.startTime, leadsGroup: child.pgid === child.pid })
      }
    }
  }
  return escaped
}

/** Whether the process is gone: absent, a zombie, or its pid now names another process. */
export const processGone = (ref: ProcessRef): boolean => {
  const stat = readStat(ref.pid)
  return stat === undefined || stat.state === "Z" || stat.startTime !== ref.startTime
}

/**
 * Sends `signal` to the process (to its whole group when it leads one) if it still runs; false
 * when it had gone, so that a pid taken by another process since it was collected is left alone.
 */
export const signalProcess = (ref: ProcessRef, signal: NodeJS.Signals): boolean => {
  if (processGone(ref)) return false
  try {
    process.kill(ref.leadsGroup ? -ref.pid : ref.pid, signal)
    return true
  } catch (error) {
    if (errnoCode(error) === "ESRCH") return false
    throw error
  }
}
