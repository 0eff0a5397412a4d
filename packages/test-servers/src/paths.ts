/**
 * Where the fixture programs live on disk and how to launch them over stdio: the fixture bin, the
 * npx-style wrapper and `@modelcontextprotocol/server-everything`, each run with this Node binary.
 */
import { createRequire } from "node:module"
import { fileURLToPath } from "node:url"

/** The command and arguments that start an MCP server over stdio. */
export interface StdioLaunchConfig {
  /** The executable, always `process.execPath`. */
  readonly command: string
  /** The script and its arguments. */
  readonly args: Array<string>
}

// `../dist/` works from both `src/` (tests run on sources) and `dist/` (the built package).
/** The absolute path of the fixture server bin, `dist/main.js` (build the package first). */
export const fixtureServerPath: string = fileURLToPath(new URL("../dist/main.js", import.meta.url))

/** The absolute path of the npx-style wrapper, `dist/wrapper.js`: `node wrapper.js <command> [args...]`. */
export const wrapperPath: string = fileURLToPath(new URL("../dist/wrapper.js", import.meta.url))

/** The absolute path of `@modelcontextprotocol/server-everything`'s `dist/index.js`. */
export const serverEverythingPath: string = createRequire(import.meta.url).resolve(
  "@modelcontextprotocol/server-everything/dist/index.js"
)

/** The stdio launch config of the fixture server; `extraArgs` go after the script (see `--help`). */
export const fixtureStdioConfig = (extraArgs: ReadonlyArray<string> = []): StdioLaunchConfig => ({
  command: process.execPath,
  args: [fixtureServerPath, ...extraArgs]
})

/** The stdio launch config of server-everything (its first argument picks the transport: `stdio`). */
export const serverEverythingStdioConfig = (): StdioLaunchConfig => ({
  command: process.execPath,
  args: [serverEverythingPath, "stdio"]
})
