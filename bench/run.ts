/**
 * The benchmark suite (`pnpm bench`): runs every row, prints the machine and a table, and writes
 * `bench/results.json`; a row that throws is reported as an error and the others still run.
 */
import { descendantsOf, type ProcessInfo } from "@mcp-pool/test-servers"
import { writeFile } from "node:fs/promises"
import { availableParallelism, cpus, loadavg, totalmem } from "node:os"
import { fileURLToPath } from "node:url"
import { sleep } from "./src/measure.ts"
import type { RowDefinition, RowResult } from "./src/row.ts"
import { row as adaptive } from "./src/rows/adaptive/row.ts"
import { row as catalog } from "./src/rows/catalog.ts"
import { row as concurrency } from "./src/rows/concurrency.ts"
import { row as direct } from "./src/rows/direct.ts"
import { row as hitRate } from "./src/rows/hitRate.ts"
import { row as instrumentation } from "./src/rows/instrumentation.ts"
import { row as lifecycle } from "./src/rows/lifecycle.ts"
import { row as memory } from "./src/rows/memory.ts"
import { row as overhead } from "./src/rows/overhead.ts"
import { row as peer } from "./src/rows/peer.ts"
import { row as scaling } from "./src/rows/scaling.ts"
import { renderTable, renderVerdicts } from "./src/table.ts"

/** In table order: the peer (row 9) next to the overhead row it compares with. */
const allRows: ReadonlyArray<RowDefinition> = [
  direct,
  overhead,
  peer,
  concurrency,
  scaling,
  hitRate,
  memory,
  lifecycle,
  instrumentation,
  catalog,
  adaptive
]

/** `BENCH_ROWS=2,9` runs only those rows. */
const only = process.env["BENCH_ROWS"]?.split(",").map((id) => Number(id.trim()))
const rows = only === undefined ? allRows : allRows.filter((row) => only.includes(row.id))

const ROW_TIMEOUT_MS = 120_000
const resultsPath = fileURLToPath(new URL("results.json", import.meta.url))

const message = (error: unknown): string => (error instanceof Error ? `${error.name}: ${error.message}` : String(error))

const withTimeout = <A>(promise: Promise<A>, ms: number): Promise<A> => {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/** The processes this one still has below it, once they had up to `graceMs` to exit. */
const leftovers = async (graceMs: number): Promise<ReadonlyArray<ProcessInfo>> => {
  const deadline = performance.now() + graceMs
  for (;;) {
    const left = await descendantsOf(process.pid)
    if (left.length === 0 || performance.now() >= deadline) return left
    await sleep(100)
  }
}

/** Ends processes left behind by a row (all of them were started by this benchmark). */
const reap = (left: ReadonlyArray<ProcessInfo>): void => {
  for (const { pid } of left) {
    try {
      process.kill(pid, "SIGKILL")
    } catch {
      // It exited meanwhile.
    }
  }
}

const runRow = async (definition: RowDefinition): Promise<RowResult> => {
  const started = performance.now()
  const base = { id: definition.id, name: definition.name }
  let result: RowResult
  try {
    const outcome = await withTimeout(definition.run(), ROW_TIMEOUT_MS)
    result = { ...base, ...outcome, durationMs: Math.round(performance.now() - started) }
  } catch (error) {
    result = {
      ...base,
      baseline: {},
      subject: {},
      ratio: null,
      ratioOf: "",
      target: definition.target,
      pass: false,
      checks: [],
      durationMs: Math.round(performance.now() - started),
      error: message(error)
    }
  }
  const left = await leftovers(5000)
  if (left.length > 0) {
    reap(left)
    const note = `left ${left.length} process(es) running: ${left.map((p) => `${p.pid} ${p.command}`).join("; ")}`
    result = { ...result, pass: false, notes: [...(result.notes ?? []), note] }
  }
  return result
}

const machine = () => ({
  cores: availableParallelism(),
  cpuModel: cpus()[0]?.model ?? "unknown",
  node: process.version,
  platform: `${process.platform} ${process.arch}`,
  memoryGB: Math.round(totalmem() / 1024 ** 3),
  loadAverageAtStart: loadavg().map((x) => Math.round(x * 100) / 100)
})

const main = async () => {
  const started = performance.now()
  const host = machine()
  console.log(
    `machine: ${host.cores} cores, ${host.cpuModel}, ${host.memoryGB} GB, Node ${host.node} (${host.platform}), load ${host.loadAverageAtStart.join(" ")}`
  )
  console.log("every row compares two things measured side by side, in alternating rounds, in this run\n")
  const results: Array<RowResult> = []
  for (const definition of rows) {
    console.log(`row ${definition.id}: ${definition.name}`)
    const result = await runRow(definition)
    results.push(result)
    console.log(`  ${result.error === undefined ? "done" : "error"} in ${(result.durationMs / 1000).toFixed(1)} s`)
  }
  const left = await leftovers(5000)
  reap(left)
  const durationMs = Math.round(performance.now() - started)
  console.log(`\n${renderTable(results)}\n`)
  for (const result of results) {
    for (const note of result.notes ?? []) console.log(`row ${result.id}: ${note}`)
    if (result.error !== undefined) console.log(`row ${result.id}: ${result.error}`)
  }
  console.log(`\n${renderVerdicts(results)}`)
  console.log(
    `\n${results.length} rows in ${(durationMs / 1000).toFixed(1)} s; ${left.length === 0 ? "no server process left running" : `${left.length} process(es) left running and killed`}`
  )
  await writeFile(
    resultsPath,
    `${JSON.stringify(
      { machine: host, finishedAt: new Date().toISOString(), durationMs, leftoverProcesses: left, rows: results },
      null,
      2
    )}\n`
  )
  console.log(`results written to ${resultsPath}`)
  if (left.length > 0 || results.some((result) => result.error !== undefined)) process.exitCode = 1
}

main().catch((error: unknown) => {
  console.error(message(error))
  process.exitCode = 1
})
