/**
 * The published packages as a user gets them: packed with `pnpm pack` (which rewrites the
 * `workspace:` ranges), installed with npm into a project outside the workspace, then used from
 * an ES module program (`import`), a CommonJS program (`require`) and TypeScript consumers.
 *
 * Run after a build (`pnpm test:consumer` builds first). Exits non-zero, saying which step
 * failed, on any failure; removes its temporary directory in every case.
 */
import { spawn, spawnSync } from "node:child_process"
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { fileURLToPath } from "node:url"

const root = resolve(fileURLToPath(new URL("../..", import.meta.url)))
const started = Date.now()
const seconds = (since) => `${((Date.now() - since) / 1000).toFixed(1)} s`
const readJson = (path) => JSON.parse(readFileSync(path, "utf8"))

class StepFailed extends Error {}

/**
 * Runs a command to its end; resolves with its standard output, or rejects with a message that
 * names the step and shows the output when it fails or outlives `timeout` ms.
 */
const run = (step, command, args, { cwd = root, timeout = 120_000, quiet = false } = {}) =>
  new Promise((resolvePromise, reject) => {
    const since = Date.now()
    const child = spawn(command, args, { cwd, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let output = ""
    child.stdout.on("data", (chunk) => {
      stdout += chunk
      output += chunk
    })
    child.stderr.on("data", (chunk) => {
      output += chunk
    })
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      child.kill("SIGKILL")
    }, timeout)
    const fail = (why) =>
      reject(
        new StepFailed(
          `${step}: \`${command} ${args.join(" ")}\` ${why}${output.trim() === "" ? "" : `\n${output.trim()}`}`
        )
      )
    child.on("error", (error) => {
      clearTimeout(timer)
      fail(error.message)
    })
    child.on("close", (code, signal) => {
      clearTimeout(timer)
      if (timedOut) return fail(`did not finish within ${timeout / 1000} s`)
      if (code !== 0) return fail(`exited with ${code ?? signal}`)
      const shown = quiet || output.trim() === "" ? "" : `\n${output.trim().replaceAll(/^/gm, "   ")}`
      console.log(`ok ${step} (${seconds(since)})${shown}`)
      resolvePromise(stdout)
    })
  })

const published = readdirSync(join(root, "packages"), { withFileTypes: true })
  .filter((entry) => entry.isDirectory() && existsSync(join(root, "packages", entry.name, "package.json")))
  .map((entry) => join(root, "packages", entry.name))
  .filter((dir) => readJson(join(dir, "package.json")).private !== true)

const core = readJson(join(root, "packages", "core", "package.json"))
const express = readJson(join(root, "packages", "express", "package.json"))
const testServers = readJson(join(root, "packages", "test-servers", "package.json"))
const rootPackage = readJson(join(root, "package.json"))

const temp = mkdtempSync(join(tmpdir(), "mcp-pool-consumer-"))
const cleanUp = () => rmSync(temp, { recursive: true, force: true })
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, () => {
    cleanUp()
    process.exit(1)
  })
}

/** A TypeScript consumer: `files` type-checked with `compilerOptions`, by the workspace's compiler. */
const typeCheck = (app, name, compilerOptions, files) => {
  const dir = join(app, `ts-${name.replaceAll(/[^A-Za-z0-9]+/g, "-")}`)
  mkdirSync(dir)
  for (const [file, text] of Object.entries(files)) writeFileSync(join(dir, file), text)
  const options = { strict: true, noEmit: true, target: "ES2023", types: ["node"], ...compilerOptions }
  writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({ compilerOptions: options, files: Object.keys(files) }))
  const tsc = join(root, "node_modules", "typescript", "bin", "tsc")
  return run(`tsc, ${name}`, process.execPath, [tsc, "-p", dir], { quiet: true })
}

/** The TypeScript blocks of the published packages' READMEs, each an ES module of its own. */
const readmeExamples = () =>
  Object.fromEntries(
    published.flatMap((dir) => {
      const readme = join(dir, "README.md")
      if (!existsSync(readme)) throw new StepFailed(`${readme} is missing`)
      const blocks = Array.from(readFileSync(readme, "utf8").matchAll(/^```ts\n([\s\S]*?)^```$/gm), (match) => match[1])
      const name = dir.slice(join(root, "packages").length + 1)
      return blocks.map((code, index) => [`readme-${name}-${index + 1}.mts`, `${code}\nexport {}\n`])
    })
  )

const esmSource = `import { createMcpConnectionManager, MCPServerNotFound } from "@mcp-pool/core"
import { MCPConnectionManager } from "@mcp-pool/core/MCPConnectionManager"
import { mcpMonitoringRouter } from "@mcp-pool/express"
import { mcpPool } from "@mcp-pool/fastify"
import { createInstrumentedMcpConnectionManager } from "@mcp-pool/opentelemetry"
import * as Effect from "effect/Effect"

const manager = await createMcpConnectionManager({ servers: {} })
const listing = await manager.tools("echo").listTools()
const names: ReadonlyArray<string> = listing.tools.map((tool) => tool.name)
const layer = MCPConnectionManager.layer({ servers: {} })
const program = Effect.gen(function* () {
  const service = yield* MCPConnectionManager
  return service
})
export { createInstrumentedMcpConnectionManager, layer, mcpMonitoringRouter, mcpPool, MCPServerNotFound, names, program }
`

const cjsSource = `import { createMcpConnectionManager } from "@mcp-pool/core"
import { MCPConnectionManager } from "@mcp-pool/core/MCPConnectionManager"
import { mcpMonitoringRouter } from "@mcp-pool/express"

export const open = () => createMcpConnectionManager({ servers: {} })
export const layer = MCPConnectionManager.layer({ servers: {} })
export { mcpMonitoringRouter }
`

const main = async () => {
  console.log(`consumer test in ${temp}, Node ${process.version}`)
  const packs = join(temp, "packs")
  mkdirSync(packs)
  for (const dir of published) {
    const name = readJson(join(dir, "package.json")).name
    await run(`pack ${name}`, "pnpm", ["pack", "--pack-destination", packs], { cwd: dir, quiet: true })
  }
  const tarballs = readdirSync(packs).map((file) => join(packs, file))
  if (tarballs.length !== published.length) {
    throw new StepFailed(`pack: expected ${published.length} tarballs, found ${tarballs.join(", ")}`)
  }
  for (const tarball of tarballs) {
    const listing = await run(`list ${tarball.slice(packs.length + 1)}`, "tar", ["-tzf", tarball], { quiet: true })
    const cruft = listing
      .split("\n")
      .filter((file) => /\.tsbuildinfo$|(^|\/)(test|coverage|etc|node_modules)\//.test(file))
    if (cruft.length > 0) throw new StepFailed(`pack: ${tarball} contains ${cruft.join(", ")}`)
    const files = new Set(listing.split("\n"))
    const missing = ["package/LICENSE", "package/README.md", "package/CHANGELOG.md"].filter((file) => !files.has(file))
    if (missing.length > 0) throw new StepFailed(`pack: ${tarball} lacks ${missing.join(", ")}`)
  }

  const app = join(temp, "app")
  cpSync(join(root, "test", "consumer", "app"), app, { recursive: true })
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "consumer", private: true }, null, 2))
  const install = [
    ...tarballs,
    `effect@${core.peerDependencies.effect}`,
    // For the test's own stdio server.
    `@modelcontextprotocol/sdk@${core.dependencies["@modelcontextprotocol/sdk"]}`,
    `zod@${testServers.dependencies.zod}`,
    // What a TypeScript user adds: Node's types and the Express adapter's optional peer.
    `@types/node@${rootPackage.devDependencies["@types/node"]}`,
    `@types/express@${express.devDependencies["@types/express"]}`
  ]
  await run("npm install", "npm", ["install", "--no-audit", "--no-fund", "--loglevel=error", ...install], {
    cwd: app,
    timeout: 180_000,
    quiet: true
  })

  // One consumer checks every declaration file it loads (ours and our dependencies'): the
  // longest step, so it runs beside the others. The rest skip that, as most projects do
  // (`skipLibCheck`), and check only their own code.
  const everyDeclaration = typeCheck(
    app,
    "ESM, module nodenext, every .d.ts",
    { module: "nodenext" },
    {
      "main.mts": esmSource
    }
  )
  const rest = async () => {
    await run("ESM program (import)", process.execPath, ["esm.mjs"], { cwd: app, timeout: 60_000 })
    await run("CommonJS program (require)", process.execPath, ["cjs.cjs"], { cwd: app, timeout: 60_000 })
    await typeCheck(app, "ESM, module node16", { module: "node16", skipLibCheck: true }, { "main.mts": esmSource })
    await typeCheck(
      app,
      "ESM, moduleResolution bundler",
      { module: "preserve", moduleResolution: "bundler", skipLibCheck: true },
      { "main.ts": esmSource }
    )
    await typeCheck(
      app,
      "CommonJS, module nodenext",
      { module: "nodenext", skipLibCheck: true },
      {
        "main.cts": cjsSource
      }
    )
    await typeCheck(app, "the packages' README examples", { module: "nodenext", skipLibCheck: true }, readmeExamples())
  }
  await Promise.all([everyDeclaration, rest()])
}

/**
 * Processes still running from the temporary project (a server whose program was killed at its
 * time limit, say): ended here so that nothing outlives the test, and reported.
 */
const endLeftovers = () => {
  const ps = spawnSync("ps", ["-eo", "pid=,args="], { encoding: "utf8" })
  const left = (ps.stdout ?? "")
    .split("\n")
    .map((line) => /^\s*(\d+)\s+(.*)$/.exec(line))
    .filter((match) => match !== null && match[2].includes(temp) && Number(match[1]) !== ps.pid)
  for (const [, pid] of left) {
    try {
      process.kill(Number(pid), "SIGKILL")
    } catch {
      // Ended on its own meanwhile.
    }
  }
  return left.map(([, pid, args]) => `  ${pid} ${args}`)
}

try {
  await main()
  const left = endLeftovers()
  if (left.length > 0) throw new StepFailed(`processes of the test project were still running:\n${left.join("\n")}`)
  console.log(`consumer test passed in ${seconds(started)}`)
} catch (error) {
  const left = endLeftovers()
  const message = error instanceof StepFailed ? error.message : (error?.stack ?? String(error))
  const also = left.length > 0 ? `\n(ended processes left running:\n${left.join("\n")})` : ""
  console.error(`\nconsumer test FAILED after ${seconds(started)}:\n${message}${also}`)
  process.exitCode = 1
} finally {
  cleanUp()
}
