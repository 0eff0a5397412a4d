/**
 * What the core's integration tests share: a manager in a scope of its own that the test's
 * scope closes too, waits in real time for real processes, and readers of results and errors.
 */
import { descendantsOf, type ProcessInfo, waitFor } from "@mcp-pool/test-servers"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
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

/** Waits in real time (the test clock does not move) until `predicate` holds; fails after `timeoutMs`. */
export const realWait = (predicate: () => boolean | Promise<boolean>, timeoutMs = 10_000) =>
  Effect.promise(() => waitFor(predicate, timeoutMs))

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
