/**
 * OpenTelemetry for users of the Promise API: one call that makes a manager whose pooled
 * calls are traced and whose pools' metrics are exported.
 *
 * @since 0.1.0
 */
import {
  createMcpConnectionManager,
  type MCPConnectionManagerPromise,
  type PromiseManagerOptions
} from "@mcp-pool/core"
import { MCPConnectionManager, promiseTools } from "@mcp-pool/core/MCPConnectionManager"
import * as MCPConnectionPool from "@mcp-pool/core/MCPConnectionPool"
import * as PooledMCPTools from "@mcp-pool/core/PooledMCPTools"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Flush from "./internal/flush.js"
import * as NodeSdk from "./NodeSdk.js"

/**
 * How to export: `{ global: true }` for an application that already runs
 * `@opentelemetry/sdk-node` (see `NodeSdk.layerGlobal`), else the options of `NodeSdk.layer`.
 *
 * @since 0.1.0
 * @category models
 */
export type InstrumentOptions = { readonly global: true } | (NodeSdk.Options & { readonly global?: false })

/**
 * Instruments a manager made by `createMcpConnectionManager`: the calls of `tools(name)`
 * run with OpenTelemetry's tracer (a CLIENT span each, trace context sent to the server)
 * and the pools' metrics go to the configured readers. `close()` flushes the exporters while
 * the pools are open (their counters and gauges close with them), closes the manager, then
 * shuts the exporters down. Rejects with `OtelSetupError` when the set-up fails (the manager
 * is left open).
 *
 * **Gotchas**: `withConnection` hands out a raw SDK client; its calls are not traced.
 *
 * @since 0.1.0
 * @category constructors
 */
export const instrument = async (
  manager: MCPConnectionManagerPromise,
  options: InstrumentOptions = {}
): Promise<MCPConnectionManagerPromise> => {
  const flushes = Flush.make()
  const otel = ManagedRuntime.make(
    (options.global === true ? NodeSdk.layerGlobal : NodeSdk.layer(options)).pipe(
      Layer.provide(Layer.succeed(Flush.Current, flushes))
    )
  )
  const built = await otel.runPromiseExit(Effect.context<never>())
  if (Exit.isFailure(built)) {
    await otel.dispose()
    throw Cause.squash(built.cause)
  }
  const managerContext = await manager.runtime.context()
  const service = Context.get(managerContext, MCPConnectionManager)
  // As in the manager's own Promise API: nothing can interrupt these fibers (no AbortSignal needed).
  const context = Context.add(Context.merge(managerContext, built.value), MCPConnectionPool.Uninterruptible, true)
  const runFork: PooledMCPTools.RunFork = Effect.runForkWith(context)
  let closing: Promise<void> | undefined
  // Flush while the pools are open, then close them, then shut the exporters down.
  const close = () =>
    Effect.runPromiseWith(context)(Flush.run(flushes))
      .finally(() => manager.close())
      .finally(() => otel.dispose())
  // A server's tools are made once, as the manager's own are.
  const toolsByName = new Map<string, ReturnType<MCPConnectionManagerPromise["tools"]>>()
  return {
    ...manager,
    tools: (name) => {
      // The manager's own tools() checks the name (throws MCPServerNotFound).
      manager.tools(name)
      let tools = toolsByName.get(name)
      if (tools === undefined) {
        tools = promiseTools(service, name, runFork)
        toolsByName.set(name, tools)
      }
      return tools
    },
    close: () => (closing ??= close())
  }
}

/**
 * `createMcpConnectionManager` and {@link instrument} in one call; if the OpenTelemetry
 * set-up fails, the manager is closed and the error rethrown.
 *
 * @since 0.1.0
 * @category constructors
 */
export const createInstrumentedMcpConnectionManager = async (
  options: PromiseManagerOptions = {},
  telemetry: InstrumentOptions = {}
): Promise<MCPConnectionManagerPromise> => {
  const manager = await createMcpConnectionManager(options)
  try {
    return await instrument(manager, telemetry)
  } catch (error) {
    await manager.close()
    throw error
  }
}
