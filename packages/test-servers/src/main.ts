#!/usr/bin/env node
/**
 * The `mcp-pool-fixture-server` bin: turns on Node's module compile cache, then runs the CLI
 * (`cli.ts`; see `--help`). Tests and benches start this server hundreds of times.
 */
import { enableCompileCache } from "node:module"

// Before the CLI and its dependencies load (static imports would load first), so that they are
// read from the cache in `os.tmpdir()` instead of compiled again: a start costs about a fifth
// less CPU. `NODE_DISABLE_COMPILE_CACHE=1` turns it off; a failure to use it is not an error.
enableCompileCache()
await import("./cli.js")
