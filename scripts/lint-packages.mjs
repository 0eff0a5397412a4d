/**
 * Lints each published package as it would be published: packs it with `pnpm pack`, then runs
 * publint (package.json fields, exports, files) and Are the Types Wrong (types for each entry
 * point under each module resolution) on the tarball. Run after a build (`pnpm lint:packages`).
 *
 * The packages are ES modules only, so attw runs with the `esm-only` profile: it does not
 * report the `node10` resolution (TypeScript's `module: commonjs`, which cannot see the
 * `exports` map, nor effect 4's) or a CommonJS `require` resolving to ESM (which Node >= 22.12
 * loads, and TypeScript allows with `module: nodenext`). docs/getting-started.md says which
 * settings are supported; the consumer test (test/consumer/run.mjs) checks them.
 */
import { spawnSync } from "node:child_process"
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { fileURLToPath } from "node:url"

const root = resolve(fileURLToPath(new URL("..", import.meta.url)))
const bin = (name) => join(root, "node_modules", ".bin", name)

const published = readdirSync(join(root, "packages"), { withFileTypes: true })
  .filter((entry) => entry.isDirectory() && existsSync(join(root, "packages", entry.name, "package.json")))
  .map((entry) => join(root, "packages", entry.name))
  .map((dir) => ({ dir, pkg: JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) }))
  .filter(({ pkg }) => pkg.private !== true)

const run = (command, args, cwd) => {
  const result = spawnSync(command, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] })
  return { ok: result.status === 0, output: `${result.stdout ?? ""}${result.stderr ?? ""}`.trim() }
}

const temp = mkdtempSync(join(tmpdir(), "mcp-pool-lint-packages-"))
const failures = []
try {
  for (const { dir, pkg } of published) {
    const packed = run("pnpm", ["pack", "--pack-destination", temp], dir)
    const tarball = readdirSync(temp)
      .map((file) => join(temp, file))
      .find((file) => file.includes(pkg.name.replace("@", "").replace("/", "-")))
    if (!packed.ok || tarball === undefined) {
      failures.push(`${pkg.name}: pnpm pack failed\n${packed.output}`)
      continue
    }
    const checks = [
      ["publint", bin("publint"), ["run", tarball, "--strict"]],
      ["attw", bin("attw"), [tarball, "--profile", "esm-only", "--format", "table-flipped", "--no-emoji"]]
    ]
    for (const [name, command, args] of checks) {
      const result = run(command, args, root)
      console.log(`${result.ok ? "ok" : "FAILED"} ${name} ${pkg.name}`)
      if (!result.ok) failures.push(`${pkg.name}: ${name}\n${result.output}`)
    }
    rmSync(tarball)
  }
} finally {
  rmSync(temp, { recursive: true, force: true })
}

if (failures.length > 0) {
  console.error(`\n${failures.join("\n\n")}\n\nlint:packages failed for ${failures.length} check(s).`)
  process.exit(1)
}
