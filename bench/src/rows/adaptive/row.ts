/**
 * Row 11: the pool on its default settings (no `maxConcurrentRequestsPerConnection` given, so the
 * adaptive per-connection limit where it is the default) against what each load would otherwise
 * get: `echo` at 100 in flight and a CPU-bound tool against one raw SDK client, a one-at-a-time
 * server against a pool fixed at one request per connection, how soon the limits settle, and one
 * caller at a time after 5,000 warm-up calls against one raw SDK client.
 */
import { allPassed, type RowDefinition } from "../../row.ts"
import { formatMs, round } from "../../stats.ts"
import { poolVariables } from "./common.ts"
import { cpuPart, MIN_CPU_RATIO } from "./cpu.ts"
import { ECHO_IN_FLIGHT, echoPart, MIN_ECHO_RATIO } from "./echo.ts"
import { MAX_SEQUENTIAL_RATIO, SEQUENTIAL_WARM_UP_CALLS, sequentialPart } from "./sequential.ts"
import { FAST_MS, MAX_P99_RATIO, serialPart } from "./serial.ts"
import { MAX_SETTLE_MS, settlePart } from "./settle.ts"

export const row: RowDefinition = {
  id: 11,
  name: "adaptive concurrency (auto) with no other tuning",
  target: `echo at ${ECHO_IN_FLIGHT} in flight >= ${MIN_ECHO_RATIO.toFixed(1)}x one raw client; cpu >= ${MIN_CPU_RATIO.toFixed(1)}x one raw client (2 cores); on a serial server, ${FAST_MS} ms calls' p99 <= ${MAX_P99_RATIO.toFixed(1)}x a pool fixed at 1 per connection; limits settle in <= ${formatMs(MAX_SETTLE_MS)}; sequential p50 after ${SEQUENTIAL_WARM_UP_CALLS} calls <= ${MAX_SEQUENTIAL_RATIO.toFixed(1)}x one raw client`,
  run: async () => {
    const echo = await echoPart()
    const parts = [echo, await cpuPart(), await serialPart(), await settlePart(), await sequentialPart()]
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
