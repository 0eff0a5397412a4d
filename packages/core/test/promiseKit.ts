/**
 * What the Promise-API integration suites share: managers closed after each test, one HTTP
 * fixture server for the whole file, and the two transports to run a suite over.
 */
import { afterAll, afterEach, beforeAll } from "vitest"
import {
  fixtureStdioConfig,
  type SpawnedHttpFixtureServer,
  spawnHttpFixtureServer,
  waitFor
} from "@mcp-pool/test-servers"
import type { MCPConnectionManagerPromise } from "../src/index.js"

/** Waits in real time until `predicate` holds; fails after `timeoutMs`, naming `what` was awaited. */
export const until = (predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> =>
  waitFor(predicate, timeoutMs).catch(() => {
    throw new Error(`not met within ${timeoutMs} ms: ${what}`)
  })

/** Settings that keep these suites quick: no retries, a short grace period. */
export const quickDefaults = { retryAttempts: 0, shutdownGracePeriod: 0.5, connectionTimeout: 10 }

/**
 * Registers the file's hooks: an HTTP fixture server for the file, and the closing of every
 * manager given to `keep` after each test. Call it once, at the top of the file.
 */
export const promiseSuite = () => {
  const open: Array<MCPConnectionManagerPromise> = []
  let http: SpawnedHttpFixtureServer | undefined = undefined
  beforeAll(async () => {
    http = await spawnHttpFixtureServer()
  })
  afterAll(async () => {
    await http?.stop()
  })
  afterEach(async () => {
    await Promise.all(open.splice(0).map((manager) => manager.close()))
  })
  const httpUrl = (): string => {
    if (http === undefined) throw new Error("the HTTP fixture server is not up: use it inside a test")
    return http.url
  }
  return {
    /** Closes `manager` after the test. */
    keep: (manager: MCPConnectionManagerPromise): MCPConnectionManagerPromise => {
      open.push(manager)
      return manager
    },
    httpUrl,
    /** A server config of the fixture over each transport. */
    transports: {
      stdio: () => fixtureStdioConfig(),
      http: () => ({ type: "http", url: httpUrl() })
    }
  }
}
