/**
 * Ending a server's process group together with the descendants that left it (SIGTERM, a grace
 * period, SIGKILL), and SIGKILL for every group still alive when the host process exits.
 */
import { onExit } from "signal-exit"
import {
  errnoCode,
  escapedDescendants,
  freshProcessTable,
  groupHasLiveMember,
  isLinux,
  processGone,
  type ProcessRef,
  readProcessTableSync,
  readStat,
  signalProcess
} from "./processTree.js"

/** How long to wait for a group to vanish after SIGKILL before giving up. */
const AFTER_SIGKILL_WAIT_MS = 1_000
/** Polling a group that outlives its leader's pipes: the first delay, doubled up to the last. */
const FIRST_POLL_MS = 1
const MAX_POLL_MS = 20
/** While the pipes are still open, the process table is read at most this often. */
const SLOW_SCAN_MS = 100

const isWindows = process.platform === "win32"

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Sends `signal` to every process of the group; false when the group no longer exists. */
const signalGroup = (pgid: number, signal: NodeJS.Signals | 0): boolean => {
  try {
    process.kill(isWindows ? pgid : -pgid, signal)
    return true
  } catch (error) {
    if (errnoCode(error) === "ESRCH") return false
    throw error
  }
}

// ---------------------------------------------------------------------------------------------
// Host-exit registry
// ---------------------------------------------------------------------------------------------

/** Process groups (by pgid, which is the leader's pid) that we started and that may still live. */
const liveGroups = new Set<number>()
let exitHookInstalled = false

/** Reports what could not be killed while the host exits: stderr is synchronous for pipes and files. */
const reportOnExit = (what: string, error: unknown): void => {
  process.stderr.write(`mcp-pool: could not kill ${what}: ${String(error)}\n`)
}

/** Runs one kill of the exit hook; a failure cannot be acted on any more, so it is reported. */
const killOnExit = (what: string, kill: () => boolean): void => {
  try {
    kill()
  } catch (error) {
    reportOnExit(what, error)
  }
}

/** The descendants that left the live groups, read synchronously from `/proc` (Linux only). */
const escapedFromLiveGroups = (): ReadonlyArray<ProcessRef> => {
  if (!isLinux) return []
  try {
    const table = readProcessTableSync()
    return [...liveGroups].flatMap((pgid) => escapedDescendants(table, pgid))
  } catch (error) {
    reportOnExit("the processes that left MCP server process groups", error)
    return []
  }
}

/** SIGKILLs every live group and the descendants that left it; collected first, while their parents live. */
const killAllOnExit = (): void => {
  const escaped = escapedFromLiveGroups()
  for (const pgid of liveGroups) {
    killOnExit(`MCP server process group ${pgid}`, () => signalGroup(pgid, "SIGKILL"))
  }
  for (const ref of escaped) killOnExit(`process ${ref.pid}`, () => signalProcess(ref, "SIGKILL"))
  liveGroups.clear()
}

/**
 * Remembers a process group so that it is SIGKILLed, with the descendants that left it, if the
 * host process exits while it lives: a normal exit, `process.exit()`, or a fatal signal (SIGINT,
 * SIGTERM, SIGHUP, ...) that the application does not handle itself. `signal-exit` re-raises
 * such a signal after the groups are killed, so the host still ends as it would have.
 */
export const registerGroup = (pgid: number): void => {
  if (!exitHookInstalled) {
    exitHookInstalled = true
    onExit(killAllOnExit)
  }
  liveGroups.add(pgid)
}

const unregisterGroup = (pgid: number): void => {
  liveGroups.delete(pgid)
}

// ---------------------------------------------------------------------------------------------
// Waiting for a group to go
// ---------------------------------------------------------------------------------------------

/**
 * Whether a Linux process group has a member that is not a zombie. A group can outlive its
 * processes as zombies when they were orphaned under an init that does not reap (common in
 * containers, and where the host itself is pid 1); such a group is gone for our purposes.
 */
const groupHasLiveMemberLinux = async (pgid: number): Promise<boolean> => {
  // Cheap first look: the leader itself, running, is enough.
  const leader = readStat(pgid)
  if (leader !== undefined && leader.pgid === pgid && leader.state !== "Z") return true
  return groupHasLiveMember(await freshProcessTable(), pgid)
}

/** Whether any process of the group still runs. */
const groupAlive = async (pgid: number): Promise<boolean> => {
  if (!signalGroup(pgid, 0)) return false
  if (isLinux) return groupHasLiveMemberLinux(pgid)
  return true
}

/** Whether `promise` settles within `ms`; the timer is cleared either way. */
const settlesWithin = (promise: Promise<unknown>, ms: number): Promise<boolean> =>
  new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms)
    void promise.then(() => {
      clearTimeout(timer)
      resolve(true)
    })
  })

/**
 * What Node tells us about the group we started, so that its end is awaited, not polled for,
 * and what we tell its owner about the signals we send.
 */
export interface GroupEvents {
  /** Settles when the leader (our child) has exited and been reaped. */
  readonly leaderExited: Promise<unknown>
  /**
   * Settles when the leader has exited and its stdout and stderr pipes are closed: every
   * process that held them (wrappers' children, grandchildren) has exited too.
   */
  readonly pipesClosed: Promise<unknown>
  /** Told just before each signal is sent to the group, so that the exit it causes is known as ours. */
  readonly onSignal?: (signal: NodeJS.Signals) => void
}

/**
 * Waits until the group is gone; true if it went within `timeoutMs`. While the leader runs,
 * the group is alive: its exit is awaited. Its descendants (a server behind `sh -c` or `npx`)
 * share its stdio pipes, so the pipes' close says when they have exited: then one
 * `kill(-pgid, 0)` usually finds the group empty, or one pass over `/proc` (shared by the
 * groups closing at the same time) finds only zombies that nobody reaps. A group whose members
 * outlive the pipes, or left them, is polled, cheaply (`kill`) and with the process table read
 * seldom.
 */
const waitGroupGone = async (pgid: number, timeoutMs: number, events?: GroupEvents): Promise<boolean> => {
  const deadline = Date.now() + timeoutMs
  if (events !== undefined && !(await settlesWithin(events.leaderExited, timeoutMs))) {
    return !(await groupAlive(pgid))
  }
  let pipesClosed = events === undefined
  // While the pipes are open, a member holds them: the process table is read seldom. Once they
  // close, it is read at once, then after 1, 2, 4 ... ms (a member that has just closed its
  // files is a moment away from being a zombie), and seldom again.
  let scanDelay = pipesClosed ? FIRST_POLL_MS : SLOW_SCAN_MS
  let scanAt = pipesClosed ? 0 : Date.now() + SLOW_SCAN_MS
  const closed = events?.pipesClosed.then(() => {
    pipesClosed = true
    scanAt = 0
    scanDelay = FIRST_POLL_MS
  })
  let delay = FIRST_POLL_MS
  for (;;) {
    if (!signalGroup(pgid, 0)) return true
    // Something of the group is in the process table: a member still running, or a zombie.
    if (isLinux && Date.now() >= scanAt) {
      if (!(await groupHasLiveMemberLinux(pgid))) return true
      scanAt = Date.now() + scanDelay
      scanDelay = Math.min(scanDelay * 2, SLOW_SCAN_MS)
    }
    const left = deadline - Date.now()
    if (left <= 0) return false
    const wait = Math.min(delay, left)
    if (pipesClosed || closed === undefined) await sleep(wait)
    else await settlesWithin(closed, wait)
    delay = Math.min(delay * 2, MAX_POLL_MS)
  }
}

/** Waits up to `timeoutMs` for the processes to go; returns those still running then. */
const waitProcessesGone = async (
  refs: ReadonlyArray<ProcessRef>,
  timeoutMs: number
): Promise<ReadonlyArray<ProcessRef>> => {
  const deadline = Date.now() + timeoutMs
  let running = refs.filter((ref) => !processGone(ref))
  for (let delay = FIRST_POLL_MS; running.length > 0; delay = Math.min(delay * 2, MAX_POLL_MS)) {
    const left = deadline - Date.now()
    if (left <= 0) break
    await sleep(Math.min(delay, left))
    running = running.filter((ref) => !processGone(ref))
  }
  return running
}

// ---------------------------------------------------------------------------------------------
// Ending a process tree
// ---------------------------------------------------------------------------------------------

/** A server's process group and the descendants that had left it when they were collected. */
export interface ProcessTree {
  /** The group's id, which is the pid of its leader (the server we spawned). */
  readonly pgid: number
  /** Descendants in other process groups (spawned `detached`, or after `setsid`). */
  readonly escaped: ReadonlyArray<ProcessRef>
}

/**
 * Collects the descendants that left the group, from a fresh pass over `/proc`. Only Linux
 * collects them; elsewhere `escaped` is empty and only the group is ended.
 */
export const collectProcessTree = async (pgid: number): Promise<ProcessTree> => ({
  pgid,
  escaped: isLinux ? escapedDescendants(await freshProcessTable(), pgid) : []
})

/** What of a tree still ran after a round of signals. */
interface Remaining {
  readonly group: boolean
  readonly escaped: ReadonlyArray<ProcessRef>
}

/**
 * Sends `signal` to what remains of the tree and waits up to `timeoutMs` for all of it to go.
 * A process that cannot be signalled (EPERM) is left out and its error kept in `failures`.
 */
const signalAndWait = async (
  tree: ProcessTree,
  remaining: Remaining,
  signal: NodeJS.Signals,
  timeoutMs: number,
  failures: Array<unknown>,
  events?: GroupEvents
): Promise<Remaining> => {
  events?.onSignal?.(signal)
  const groupSignalled = remaining.group && signalGroup(tree.pgid, signal)
  const signalled = remaining.escaped.filter((ref) => {
    try {
      return signalProcess(ref, signal)
    } catch (error) {
      failures.push(error)
      return false
    }
  })
  const [groupGone, escaped] = await Promise.all([
    groupSignalled ? waitGroupGone(tree.pgid, timeoutMs, events) : true,
    waitProcessesGone(signalled, timeoutMs)
  ])
  return { group: !groupGone, escaped }
}

const isEmpty = (remaining: Remaining): boolean => !remaining.group && remaining.escaped.length === 0

/** The error for a tree that could not be ended, naming what survived. */
const survived = (tree: ProcessTree, remaining: Remaining, failures: ReadonlyArray<unknown>): Error => {
  const parts: Array<string> = []
  if (remaining.group) parts.push(`process group ${tree.pgid}`)
  if (remaining.escaped.length > 0) {
    parts.push(`processes ${remaining.escaped.map((ref) => ref.pid).join(", ")} that left it`)
  }
  const what = parts.length > 0 ? `${parts.join(" and ")} still run ${AFTER_SIGKILL_WAIT_MS} ms after SIGKILL` : ""
  const why = failures.map(String).join("; ")
  return new Error([what, why].filter((text) => text.length > 0).join("; "), { cause: failures[0] })
}

/**
 * Ends a collected tree: SIGTERM to the group and to each descendant that left it (to its
 * own group when it leads one), up to `graceMs` for all of them to go, then SIGKILL to the
 * survivors and a short wait. Resolves once none of them runs; rejects, naming them, if any
 * survived SIGKILL or could not be signalled. Without `events` (a group that is not our
 * child's), the group is polled.
 */
export const endProcessTree = async (tree: ProcessTree, graceMs: number, events?: GroupEvents): Promise<void> => {
  const failures: Array<unknown> = []
  let remaining: Remaining = { group: true, escaped: tree.escaped }
  remaining = await signalAndWait(tree, remaining, "SIGTERM", graceMs, failures, events)
  if (!isEmpty(remaining)) {
    remaining = await signalAndWait(tree, remaining, "SIGKILL", AFTER_SIGKILL_WAIT_MS, failures, events)
  }
  if (!isEmpty(remaining) || failures.length > 0) throw survived(tree, remaining, failures)
  unregisterGroup(tree.pgid)
}

/**
 * Ends a process group and the descendants that left it (see {@link endProcessTree}): the
 * descendants are collected before anything is signalled, while their parents still live.
 */
export const killProcessGroup = async (pgid: number, graceMs: number, events?: GroupEvents): Promise<void> =>
  endProcessTree(await collectProcessTree(pgid), graceMs, events)
