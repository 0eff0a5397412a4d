/**
 * What the core's integration tests share: a manager in a scope of its own that the test's
 * scope closes too, fixture servers and free ports, waits in real time for real processes,
 * a test clock that expects them, log lines kept out of the output, and readers of results.
 */
import { createServer } from "node:net"
import {
  descendantsOf,
  type ProcessInfo,
  spawnHttpFixtureServer,
  type SpawnHttpFixtureServerOptions,
  waitFor
} from "@mcp-pool/test-servers"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Logger from "effect/Logger"
import type * as LogLevel from "effect/LogLevel"
import * as References from "effect/References"
import * as Scope from "effect/Scope"
import { TestClock } from "effect/testing"
import * as Tracer from "effect/Tracer"
import * as Manager from "../src/MCPConnectionManager.js"
import type { PoolConfigInput } from "../src/PoolConfig.js"

/** Settings that keep tests quick: no retries, a short grace period and connect timeout. */
export const quick: PoolConfigInput = { retryAttempts: 0, shutdownGracePeriod: 0.5, connectionTimeout: 5 }

/**
 * Builds a manager in a scope of its own. The test may close it (`close`) to check what
 * closing does; the test's scope closes it too, so a failed assertion leaves no server running.
 */
export const startManager = (
  servers: Record<string, unknown>,
  defaults: PoolConfigInput,
  options: Manager.ManagerOptions = {}
) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const close = Scope.close(scope, Exit.void)
    yield* Effect.addFinalizer(() => close)
    const manager = yield* Manager.make({ servers, defaults, ...options }).pipe(Scope.provide(scope))
    return { manager, close }
  })

/**
 * The HTTP fixture server in a child process, stopped when the test's scope closes. The test
 * may `stop` it sooner (to take a remote server down); stopping twice is harmless.
 */
export const httpFixtureServer = (options: SpawnHttpFixtureServerOptions = {}) =>
  Effect.acquireRelease(
    Effect.promise(() => spawnHttpFixtureServer(options)),
    (server) => Effect.promise(() => server.stop())
  )

/**
 * A port on 127.0.0.1 that nothing listens on: a listener took it from the system, and was
 * closed. A test may start a server on it later ("the server comes up").
 */
export const unusedPort: Effect.Effect<number> = Effect.promise(
  () =>
    new Promise<number>((resolve, reject) => {
      const server = createServer()
      server.once("error", reject)
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        const port = typeof address === "object" && address !== null ? address.port : 0
        server.close(() => resolve(port))
      })
    })
)

/**
 * Waits in real time (the test clock does not move) until `predicate` holds; fails after
 * `timeoutMs`, naming the condition by its source.
 */
export const realWait = (predicate: () => boolean | Promise<boolean>, timeoutMs = 10_000) =>
  Effect.promise(() =>
    waitFor(predicate, timeoutMs).catch(() => {
      throw new Error(`not met within ${timeoutMs} ms of real time: ${predicate.toString()}`)
    })
  )

/**
 * Moves the test clock by `step` until `predicate` holds, for a pool that re-opens with a
 * back-off. An attempt still under way in real time when the clock moves fails at its
 * `connectionTimeout` and starts its next wait after that move, so one move is not always
 * enough, and moving again while an attempt runs would fail that one too: after each move this
 * waits in real time until `predicate` holds or `failures()` grows (the attempt failed and its
 * next wait began), and only then moves again. Fails after `moves` moves.
 */
export const advanceUntil = (predicate: () => boolean, step: Duration.Input, failures: () => number, moves = 10) =>
  Effect.gen(function* () {
    for (let moved = 0; !predicate(); moved++) {
      if (moved === moves) {
        return yield* Effect.die(new Error(`not met after ${moves} moves of the clock: ${predicate.toString()}`))
      }
      const before = failures()
      yield* TestClock.adjust(step)
      yield* realWait(() => predicate() || failures() > before)
      // The failed attempt's next wait starts in a fiber of its own: let it begin first.
      if (!predicate()) yield* realSleep(50)
    }
  })

/** Lets `ms` of real time pass (to show that something does not happen meanwhile). */
export const realSleep = (ms: number) => Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, ms)))

/**
 * Runs `effect`, failing the test if it has not ended within `ms` of real time: for effects
 * that would otherwise wait on a test clock nobody moves.
 */
export const withinRealTime = <A, E, R>(ms: number, what: string, effect: Effect.Effect<A, E, R>) =>
  Effect.raceFirst(
    effect,
    Effect.andThen(realSleep(ms), Effect.die(new Error(`${what} did not end within ${ms} ms of real time`)))
  )

/**
 * Runs an `it.effect` test of real processes, and closes its scope, on a test clock of its
 * own that waits 30 s of real time, not 1 s, before it warns that nobody moves it: such a test
 * waits in real time for its processes while the clock stands still, on purpose.
 *
 * Gotchas: use it once, around the whole test, so that `TestClock.adjust` moves the clock the
 * manager runs on.
 */
export const onPatientTestClock = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  effect.pipe(Effect.scoped, Effect.provide(TestClock.layer({ warningDelay: "30 seconds" })))

/** Log lines kept in memory instead of printed, see {@link captureLogs}. */
export interface CapturedLogs {
  /** The message of each line, as text. */
  readonly messages: ReadonlyArray<string>
  /** Each line in logfmt: level, message, annotations, spans and cause. */
  readonly lines: ReadonlyArray<string>
  /** Runs `effect` (and every fiber it starts) with its log lines kept here. */
  readonly capture: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
}

/**
 * A logger that keeps in memory the lines of a test that provokes warnings and errors on
 * purpose (a server killed, an alert raised): the test can assert on them, and the suite's
 * output holds only the lines nobody expected. Lines below `minimumLevel` (default: effect's,
 * Info) are dropped.
 */
export const captureLogs = (minimumLevel?: LogLevel.LogLevel): CapturedLogs => {
  const messages: Array<string> = []
  const lines: Array<string> = []
  const logger = Logger.make((options) => {
    const message = options.message
    messages.push(Array.isArray(message) ? message.map(String).join(" ") : String(message))
    lines.push(Logger.formatLogFmt.log(options))
  })
  const layer = Logger.layer([logger])
  return {
    messages,
    lines,
    capture: (effect) =>
      minimumLevel === undefined
        ? Effect.provide(effect, layer)
        : effect.pipe(Effect.provide(layer), Effect.provideService(References.MinimumLogLevel, minimumLevel))
  }
}

/** The typed error an exit failed with, if any. */
export const errorOf = <A, E>(exit: Exit.Exit<A, E>): E | undefined => {
  if (Exit.isSuccess(exit)) return undefined
  const error = Exit.findErrorOption(exit)
  return error._tag === "Some" ? error.value : undefined
}

/** The text of a tool result's first content item. */
export const text = (result: object): string => {
  const content: unknown = "content" in result ? result.content : undefined
  if (!Array.isArray(content)) return ""
  const first: unknown = content[0]
  return typeof first === "object" && first !== null && "text" in first ? String(first.text) : ""
}

/** The processes this test process still has below it, once they had up to 10 s to go. */
export const processesLeft: Effect.Effect<ReadonlyArray<ProcessInfo>> = Effect.promise(async () => {
  await waitFor(async () => (await descendantsOf(process.pid)).length === 0, 10_000).catch(() => undefined)
  return descendantsOf(process.pid)
})

/** A tracer that keeps every span it makes. */
export const recordingTracer = () => {
  const spans: Array<Tracer.NativeSpan> = []
  const tracer = Tracer.make({
    span: (options) => {
      const span = new Tracer.NativeSpan(options)
      spans.push(span)
      return span
    }
  })
  return { spans, tracer }
}
