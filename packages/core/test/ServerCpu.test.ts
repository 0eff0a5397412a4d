/**
 * What a pool reads of its server's processes' CPU time: the share of a core they used between
 * two readings, whether they compute, and a real process tree read from `/proc` (Linux).
 */
import { spawn } from "node:child_process"
import { once } from "node:events"
import { afterEach, describe, expect, it } from "vitest"
import { isLinux } from "../src/internal/processTree.js"
import { COMPUTES, READING_MS, ServerCpu, treeTicks } from "../src/pool/ServerCpu.js"

/** A reader of given CPU times (ticks of 10 ms) by pid, which the test moves on. */
const given = () => {
  const ticks = new Map<number, number>()
  return {
    ticks,
    cpu: new ServerCpu((pid) => ticks.get(pid), true, 2)
  }
}

describe("the CPU a server's processes use", () => {
  it("is the mean share of a core per process between two readings", () => {
    const { ticks, cpu } = given()
    ticks.set(10, 0).set(11, 100)
    cpu.read([10, 11], 0)
    expect(cpu.computes()).toBeUndefined()
    // Over 500 ms: 45 ticks (0.9 of a core) and 5 ticks (0.1): 0.5 each on the mean.
    ticks.set(10, 45).set(11, 105)
    cpu.read([10, 11], 2 * READING_MS)
    expect(cpu.share).toBeCloseTo(0.5)
    expect(cpu.computes()).toBe(true)
    // Both sleeping.
    ticks.set(10, 46).set(11, 106)
    cpu.read([10, 11], 4 * READING_MS)
    expect(cpu.share).toBeLessThan(COMPUTES)
    expect(cpu.computes()).toBe(false)
  })

  it("is not read more often than every READING_MS, and a reading after a quiet spell only starts the next", () => {
    const { ticks, cpu } = given()
    ticks.set(10, 0)
    cpu.read([10], 0)
    ticks.set(10, 20)
    expect(cpu.due(READING_MS - 1)).toBe(false)
    cpu.read([10], READING_MS - 1)
    expect(cpu.share).toBeUndefined()
    expect(cpu.due(READING_MS)).toBe(true)
    cpu.read([10], READING_MS)
    expect(cpu.share).toBeCloseTo(0.8)
    // Ten seconds later: what was learnt stays; the idle spell is not taken for the server's nature.
    ticks.set(10, 21)
    cpu.read([10], 10_000)
    expect(cpu.share).toBeCloseTo(0.8)
    ticks.set(10, 22)
    cpu.read([10], 10_000 + READING_MS)
    expect(cpu.share).toBeCloseTo(0.04)
  })

  it("a reading that spans time before the processes had work without a break only starts the next", () => {
    const { ticks, cpu } = given()
    ticks.set(10, 0)
    cpu.read([10], 0, 0)
    ticks.set(10, 25)
    cpu.read([10], READING_MS, 0)
    expect(cpu.computes()).toBe(true)
    // Idle for 600 ms, then borrowers wait again from 600: the reading at 700 spans the idle time.
    ticks.set(10, 30)
    cpu.read([10], 700, 600)
    expect(cpu.share).toBeCloseTo(1)
    expect(cpu.computes()).toBe(true)
    // From 700 on the process computes all the time.
    ticks.set(10, 55)
    cpu.read([10], 700 + READING_MS, 600)
    expect(cpu.share).toBeCloseTo(1)
    // Without the line's start, the same idle spell would have been read as a server that sleeps.
    const other = given()
    other.ticks.set(10, 0)
    other.cpu.read([10], 0)
    other.ticks.set(10, 25)
    other.cpu.read([10], READING_MS)
    other.ticks.set(10, 30)
    other.cpu.read([10], 700)
    expect(other.cpu.computes()).toBe(false)
  })

  it("processes that share the cores compute when they use their part of them", () => {
    const { ticks, cpu } = given()
    const pids = [1, 2, 3, 4, 5, 6, 7, 8]
    for (const pid of pids) ticks.set(pid, 0)
    cpu.read(pids, 0)
    // Eight processes on 2 cores, each with a quarter of a core: they compute.
    for (const pid of pids) ticks.set(pid, 25)
    cpu.read(pids, 1_000)
    expect(cpu.share).toBeCloseTo(0.25)
    expect(cpu.computes()).toBe(true)
    // The same eight, asleep but for a twentieth of a core each.
    for (const pid of pids) ticks.set(pid, 30)
    cpu.read(pids, 2_000)
    expect(cpu.computes()).toBe(false)
  })

  it("a process seen once, or gone, does not count; a newcomer counts from its second reading", () => {
    const { ticks, cpu } = given()
    ticks.set(10, 0)
    cpu.read([10], 0)
    ticks.set(10, 25).set(12, 500)
    cpu.read([10, 12], READING_MS)
    expect(cpu.share).toBeCloseTo(1)
    ticks.delete(10)
    ticks.set(12, 501)
    cpu.read([10, 12], 2 * READING_MS)
    expect(cpu.share).toBeCloseTo(0.04)
  })

  it("is known to be nothing where no process can be read, or elsewhere than on Linux", () => {
    const { cpu } = given()
    cpu.read([10, 11], 0)
    expect(cpu.computes()).toBe(false)
    // No process to read (none given): nothing to wait for either.
    const none = given().cpu
    none.read([], 0)
    expect(none.computes()).toBe(false)
    const elsewhere = new ServerCpu(() => 1, false)
    elsewhere.read([10], 0)
    elsewhere.read([10], READING_MS)
    expect(elsewhere.computes()).toBe(false)
    expect(elsewhere.due(10 * READING_MS)).toBe(false)
  })
})

const shells: Array<ReturnType<typeof spawn>> = []
afterEach(async () => {
  // Closing its stdin ends the child, and the shell after it.
  await Promise.all(
    shells.splice(0).map(async (shell) => {
      if (shell.exitCode !== null || shell.signalCode !== null) return
      const exited = once(shell, "exit")
      shell.stdin?.end()
      await exited
    })
  )
})

describe.runIf(isLinux)("a process tree read from /proc", () => {
  it("counts what a process's descendants computed: a shell whose child burnt 300 ms of CPU", async () => {
    // The child burns CPU time (not wall time), says so, and waits for its stdin to close; the
    // shell has a command left after it, so it waits for the child instead of becoming it.
    const burn = `const s=process.cpuUsage();let x=0;for(;;){for(let i=0;i<1e5;i++)x=(x+i)%7;const u=process.cpuUsage(s);if(u.user+u.system>=300000)break}process.stdout.write("burnt\\n");process.stdin.resume()`
    const shell = spawn("sh", ["-c", `"${process.execPath}" -e '${burn}'; true`], {
      stdio: ["pipe", "pipe", "inherit"]
    })
    shells.push(shell)
    await once(shell.stdout, "data")
    const pid = shell.pid ?? -1
    const tree = treeTicks(pid) ?? 0
    // 300 ms is 30 ticks of 10 ms; the shell itself only waits.
    expect(tree).toBeGreaterThanOrEqual(29)
    expect(treeTicks(process.pid) ?? 0).toBeGreaterThanOrEqual(tree)
    const exited = once(shell, "exit")
    shell.stdin.end()
    await exited
    expect(treeTicks(pid)).toBeUndefined()
  })
})
