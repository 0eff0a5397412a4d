/**
 * The API reports of the published packages: `packages/<pkg>/etc/*.api.md`, written by API
 * Extractor from the built `dist/*.d.ts`, one per entry point of the `exports` map.
 *
 *   node scripts/api-report.mjs            check: fail when a report differs from the code
 *   node scripts/api-report.mjs --update   write the reports (and delete the ones no entry has)
 *
 * Run through `pnpm api:check` / `pnpm api:update`, which build first. An entry point that
 * `index.d.ts` re-exports whole (`export * as X from "./X.js"`) is part of the index's report;
 * any other entry point gets its own report, `<name>.<Entry>.api.md`.
 */
import { Extractor, ExtractorConfig } from "@microsoft/api-extractor"
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { join, relative, resolve } from "node:path"
import { fileURLToPath } from "node:url"

const root = resolve(fileURLToPath(new URL("..", import.meta.url)))
const update = process.argv.includes("--update")
const pnpm = `npx -y ${JSON.parse(readFileSync(join(root, "package.json"), "utf8")).packageManager}`
const baseConfigPath = join(root, "api-extractor.json")
const baseConfig = ExtractorConfig.loadFile(baseConfigPath)

/** The published (not private) packages under packages/. */
const publishedPackages = () =>
  readdirSync(join(root, "packages"), { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && existsSync(join(root, "packages", entry.name, "package.json")))
    .map((entry) => {
      const dir = join(root, "packages", entry.name)
      return {
        dir,
        packageJsonPath: join(dir, "package.json"),
        pkg: JSON.parse(readFileSync(join(dir, "package.json"), "utf8"))
      }
    })
    .filter(({ pkg }) => pkg.private !== true)
    .toSorted((a, b) => a.pkg.name.localeCompare(b.pkg.name))

/** The entry points of a package that need a report of their own: `index`, then the rest. */
const entryPoints = ({ dir, pkg }) => {
  const problems = []
  const subpaths = Object.entries(pkg.exports ?? {}).filter(
    ([key, target]) => key !== "./package.json" && target !== null
  )
  const index = join(dir, "dist", "index.d.ts")
  const indexText = existsSync(index) ? readFileSync(index, "utf8") : ""
  const entries = []
  for (const [key, target] of subpaths) {
    if (key.includes("*")) {
      problems.push(`${pkg.name}: the exports map has the pattern "${key}": list each public module instead`)
      continue
    }
    const types = typeof target === "object" ? target.types : undefined
    if (typeof types !== "string") {
      problems.push(`${pkg.name}: the export "${key}" has no "types" condition`)
      continue
    }
    const file = resolve(dir, types)
    const name = key === "." ? "index" : key.slice(2)
    if (name !== "index") {
      const module = `./${relative(join(dir, "dist"), file).replace(/\.d\.ts$/, ".js")}`
      const whole = new RegExp(`^export \\* as \\w+ from "${module.replaceAll(".", "\\.")}";?$`, "m")
      if (whole.test(indexText)) continue
    }
    entries.push({ name, file })
  }
  return { entries, problems }
}

const alsoExportedElsewhere = {
  ...baseConfig.messages,
  extractorMessageReporting: {
    ...baseConfig.messages?.extractorMessageReporting,
    "ae-forgotten-export": { logLevel: "none", addToApiReportFile: false }
  }
}

/** API Extractor's own lines about the report: its outcome is told below, naming the command to run. */
const quiet = new Set([
  "console-api-report-not-copied",
  "console-api-report-copied",
  "console-api-report-unchanged",
  "console-api-report-created",
  "console-writing-api-report",
  "console-preamble",
  "console-compiler-version-notice"
])

const unscoped = (name) => name.replace(/^@[^/]+\//, "")
const reportName = (pkg, entry) => (entry.name === "index" ? unscoped(pkg.name) : `${unscoped(pkg.name)}.${entry.name}`)

const failures = []
const written = []

for (const target of publishedPackages()) {
  const { dir, pkg, packageJsonPath } = target
  const { entries, problems } = entryPoints(target)
  failures.push(...problems)
  const reportFolder = join(dir, "etc")
  const expected = new Set()
  for (const entry of entries) {
    const file = `${reportName(pkg, entry)}.api.md`
    expected.add(file)
    const reportPath = relative(root, join(reportFolder, file))
    if (!existsSync(entry.file)) {
      failures.push(`${pkg.name}: ${relative(root, entry.file)} is missing: build first (\`${pnpm} build\`)`)
      continue
    }
    if (!update && !existsSync(join(reportFolder, file))) {
      failures.push(`${pkg.name}: ${reportPath} does not exist (a new entry point?)`)
      continue
    }
    if (update) mkdirSync(reportFolder, { recursive: true })
    const config = ExtractorConfig.prepare({
      configObject: {
        ...baseConfig,
        projectFolder: dir,
        mainEntryPointFilePath: entry.file,
        apiReport: { ...baseConfig.apiReport, reportFileName: reportName(pkg, entry) },
        // The types a subpath entry uses from other entry points are exported by the index.
        ...(entry.name === "index" ? {} : { messages: alsoExportedElsewhere })
      },
      configObjectFullPath: baseConfigPath,
      packageJsonFullPath: packageJsonPath
    })
    let changed = false
    const result = Extractor.invoke(config, {
      localBuild: update,
      printApiReportDiff: !update,
      messageCallback: (message) => {
        if (!quiet.has(message.messageId)) return
        message.handled = true
        if (message.messageId === "console-api-report-not-copied") changed = true
      }
    })
    if (!update && (changed || result.apiReportChanged)) {
      failures.push(
        `${pkg.name}: the public API of "${entry.name === "index" ? "." : `./${entry.name}`}" differs from ${reportPath} (the diff is above)`
      )
    } else if (!result.succeeded) {
      failures.push(
        `${pkg.name}: API Extractor reported ${result.errorCount} error(s) and ${result.warningCount} warning(s) for ${relative(root, entry.file)} (above)`
      )
    } else if (update) {
      written.push(reportPath)
    }
  }
  if (existsSync(reportFolder)) {
    for (const file of readdirSync(reportFolder).filter((name) => name.endsWith(".api.md") && !expected.has(name))) {
      const stale = relative(root, join(reportFolder, file))
      if (update) {
        rmSync(join(reportFolder, file))
        console.log(`deleted ${stale}: no entry point has it any more`)
      } else {
        failures.push(`${pkg.name}: ${stale} belongs to no entry point any more`)
      }
    }
  }
}

if (failures.length > 0) {
  console.error(`\n${update ? "api:update" : "api:check"} failed:\n${failures.map((line) => `  - ${line}`).join("\n")}`)
  if (!update) {
    console.error(
      `\nThe public API changed without its report. If the change is intended, run\n  ${pnpm} api:update\nand commit the changed packages/*/etc/*.api.md with the code, so that the change shows in review.`
    )
  }
  process.exit(1)
}
console.log(
  update ? `API reports written:\n${written.map((file) => `  ${file}`).join("\n")}` : "API reports match the code."
)
