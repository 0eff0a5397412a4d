/**
 * Helpers for tests that check which processes run: the descendants of a process, whether a
 * process group still lives, and polling until a condition holds.
 */
import { execFile } from "node:child_process"
import { readdirSync, readFileSync } from "node:fs"

/** One running process as the OS process table shows it. */
export interface ProcessInfo {
  /** Its process id. */
  readonly pid: number
  /** The id of its parent. */
  readonly ppid: number
  /** The id of its process group. */
  readonly pgid: number
  /** Its command line. */
  readonly command: string
}

interface Row extends ProcessInfo {
  readonly zombie: boolean
}

const errnoCode = (error: unknown): string | undefined =>
  error instanceof Error && "code" in error && typeof error.code === "string" ? error.code : undefined

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

const parseRow = (line: string): Row | undefined => {
  const match = /^\s*(\d+)\s+(\d+)\s+(\d+)\s+(\S+)\s?(.*)$/.exec(line)
  if (match === null) return undefined
  const [, pid, ppid, pgid, stat, command] = match
  return {
    pid: Number(pid),
    ppid: Number(ppid),
    pgid: Number(pgid),
    zombie: (stat ?? "").startsWith("Z"),
    command: command ?? ""
  }
}

/** Runs `ps` and parses its table, leaving out the `ps` process itself. */
const processTable = (): Promise<ReadonlyArray<Row>> =>
  new Promise((resolve, reject) => {
    const ps = execFile(
      "ps",
      ["-eo", "pid=,ppid=,pgid=,stat=,args="],
      { encoding: "utf8", maxBuffer: 16 * 1024 * 1024 },
      (error, stdout) => {
        if (error !== null) {
          reject(error)
          return
        }
        const rows: Array<Row> = []
        for (const line of stdout.split("\n")) {
          const row = parseRow(line)
          if (row !== undefined && row.pid !== ps.pid) rows.push(row)
        }
        resolve(rows)
      }
    )
  })

/**
 * All transitive descendants of `pid` that are still running (zombies, which have already
 * exited, are left out), read from `ps`; the `ps` process itself is never listed.
 */
export const descendantsOf = async (pid: number): Promise<ReadonlyArray<ProcessInfo>> => {
  const rows = await processTable()
  const children = new Map<number, Array<Row>>()
  for (const row of rows) {
    const siblings = children.get(row.ppid)
    if (siblings === undefined) children.set(row.ppid, [row])
    else siblings.push(row)
  }
  const found: Array<ProcessInfo> = []
  const queue = [pid]
  for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
    for (const row of children.get(next) ?? []) {
      queue.push(row.pid)
      if (!row.zombie) found.push({ pid: row.pid, ppid: row.ppid, pgid: row.pgid, command: row.command })
    }
  }
  return found
}

/** The state letter and pgid of a process from `/proc/<pid>/stat`, undefined if it has gone. */
const procStat = (pid: string): { readonly state: string; readonly pgid: number } | undefined => {
  let stat: string
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8")
  } catch (error) {
    const code = errnoCode(error)
    if (code === "ENOENT" || code === "ESRCH") return undefined
    throw error
  }
  // The command, in parens, may itself hold spaces and parens.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return { state: fields[0] ?? "", pgid: Number(fields[2]) }
}

/**
 * Whether some process of the group `pgid` still runs. On Linux, a group whose members are
 * all zombies (orphans under an init that does not reap them) counts as gone.
 */
export const processGroupAlive = (pgid: number): boolean => {
  try {
    process.kill(-pgid, 0)
  } catch (error) {
    const code = errnoCode(error)
    if (code === "ESRCH") return false
    // EPERM: the group exists but belongs to someone else.
    if (code === "EPERM") return true
    throw error
  }
  if (process.platform !== "linux") return true
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue
    const stat = procStat(name)
    if (stat !== undefined && stat.pgid === pgid && stat.state !== "Z") return true
  }
  return false
}

/** Polls `predicate` every 10 ms until it holds; rejects if it still does not after `timeoutMs`. */
export const waitFor = async (predicate: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await predicate()) return
    if (Date.now() >= deadline) throw new Error(`condition not met within ${timeoutMs} ms`)
    await sleep(10)
  }
}
