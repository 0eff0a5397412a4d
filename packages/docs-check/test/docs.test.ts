/**
 * Every fenced code block of README.md and docs/*.md, checked against the code, so that the
 * documentation cannot drift from it. Run after a build: the blocks import the packages as a
 * user does, through their `exports` and `dist/*.d.ts`.
 */
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { beforeAll, describe, expect, it } from "vitest"
import {
  checkHttpBlocks,
  checkInlineCommands,
  checkJsonBlocks,
  checkLinks,
  checkShellBlocks,
  checkVariables
} from "./checks.js"
import { type Block, blocks, type Doc, readDocs, root } from "./markdown.js"
import { type TypeCheck, typeCheck } from "./typescript.js"

/** What each fence language is checked for. */
const checkers = {
  ts: "typescript",
  typescript: "typescript",
  json: "json",
  jsonc: "json",
  sh: "shell",
  bash: "shell",
  shell: "shell",
  http: "http",
  // Plain text (program output, a file tree) has nothing to check beyond the variables every document is searched for.
  text: "text"
} as const

type Checker = (typeof checkers)[keyof typeof checkers]

const checkerOf = (block: Block): Checker | undefined =>
  Object.hasOwn(checkers, block.lang) ? checkers[block.lang as keyof typeof checkers] : undefined

/** Fails with one finding per line, each starting with `file.md:line:`. */
const expectNone = (findings: ReadonlyArray<string>) => {
  if (findings.length > 0) expect.fail(`${findings.length} finding(s):\n${findings.join("\n")}`)
}

const docs = readDocs()
const all = docs.flatMap(blocks)
const of = (checker: Checker, from: ReadonlyArray<Block> = all) => from.filter((block) => checkerOf(block) === checker)

const pnpm: string = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).packageManager

/** A document with one mistake of each kind, to show that each check can fail. */
const broken: Doc = {
  file: "fixture/broken.md",
  text: [
    "# Broken",
    "",
    "```ts",
    'import { createMcpConnectionManager } from "@mcp-pool/core"',
    "",
    "const manager = await createMcpConnectionManager({ servers: {} })",
    'await manager.tool("files")',
    "```",
    "",
    "```jsonc",
    '{ "mcpServers": { "files": { "command": "npx", "pool": { "maxConnection": 4 } } } }',
    "```",
    "",
    "`GET /status`",
    "",
    "```json",
    '{ "status": "fine", "timestamp": "2026-11-25T06:05:53.473Z", "total_pools": 0, "pools": {} }',
    "```",
    "",
    "```sh",
    `npx -y ${pnpm} tset`,
    `MCP_POOL_MAX_CONECTIONS=4 npx -y ${pnpm} --filter @mcp-pool/example-quickstart strat`,
    "```",
    "",
    "```http",
    "GET /api/v1/mcp/pool/fx HTTP/1.1",
    "```",
    "",
    "See [operations](../docs/operations.md#alert) and [the example](../examples/nothing/main.ts).",
    ""
  ].join("\n")
}
const brokenBlocks = blocks(broken)

let typeChecked: TypeCheck
beforeAll(() => {
  // One program for the documents' blocks and the fixture's.
  typeChecked = typeCheck([...of("typescript"), ...of("typescript", brokenBlocks)])
})
const errorsOf = (file: (name: string) => boolean) =>
  typeChecked.errors.filter((error) => file(error.slice(0, error.indexOf(":"))))

describe("the documentation", () => {
  it("labels every fenced block with a language that is checked", () => {
    const unlabeled = all
      .filter((block) => checkerOf(block) === undefined)
      .map((block) =>
        block.lang === ""
          ? `${block.file}:${block.line - 1}: a fence without a language; name it (text for plain output)`
          : `${block.file}:${block.line - 1}: no check for \`${block.lang}\` blocks; add one to packages/docs-check`
      )
    expectNone(unlabeled)
  })

  it("has every TypeScript block type-checked, none skipped", () => {
    // Counted without the fence parser, so that a block it missed cannot go unnoticed.
    const counted = docs.reduce(
      (n, doc) => n + doc.text.split("\n").filter((line) => /^\s*(`{3,}|~{3,})\s*(ts|typescript)\b/i.test(line)).length,
      0
    )
    const found = of("typescript")
    expect(found.length).toBe(counted)
    expect(found.length).toBeGreaterThanOrEqual(10)
    expect(typeChecked.checked.filter((block) => block.file !== broken.file)).toEqual(found)
  })

  it("has TypeScript blocks that type-check", () => {
    const errors = errorsOf((file) => file !== broken.file)
    expectNone(errors)
  })

  it("has .mcp.json examples that load and monitoring answers that decode", async () => {
    const errors = await checkJsonBlocks(of("json"))
    expectNone(errors)
  })

  it("names only scripts that exist and the pinned pnpm, in shell blocks and inline commands", () => {
    const errors = [...checkShellBlocks(of("shell")), ...docs.flatMap(checkInlineCommands)]
    expectNone(errors)
  })

  it("names only environment variables that PoolConfig reads", () => {
    const errors = docs.flatMap(checkVariables)
    expectNone(errors)
  })

  it("has HTTP requests to routes of the monitoring API", () => {
    const errors = checkHttpBlocks(of("http"))
    expectNone(errors)
  })

  it("links to files and headings that exist", () => {
    expectNone(docs.flatMap(checkLinks))
  })
})

describe("the checks", () => {
  it("report a type error with the file and line of the markdown", () => {
    const errors = errorsOf((file) => file === broken.file)
    expect(errors).toHaveLength(1)
    expect(errors[0]).toMatch(/^fixture\/broken\.md:7: Property 'tool' does not exist/)
  })

  it("report a config that does not load, and an answer that does not decode", async () => {
    const errors = await checkJsonBlocks(of("json", brokenBlocks))
    expect(errors).toHaveLength(2)
    expect(errors[0]).toMatch(
      /^fixture\/broken\.md:11: the config does not load: .*maxConnection.*is not a pool setting/
    )
    expect(errors[1]).toMatch(/^fixture\/broken\.md:17: the example answer does not decode/)
  })

  it("report a script that does not exist, and an unknown variable", () => {
    expect(checkShellBlocks(of("shell", brokenBlocks))).toEqual([
      'fixture/broken.md:21: `pnpm tset`: the root package.json has no script "tset"',
      'fixture/broken.md:22: @mcp-pool/example-quickstart has no script "strat"'
    ])
    expect(checkVariables(broken)).toEqual([
      "fixture/broken.md:22: MCP_POOL_MAX_CONECTIONS is not a variable of PoolConfig.envVariables"
    ])
  })

  it("report a link to a missing file or heading", () => {
    expect(checkLinks({ ...broken, file: "docs/broken.md" })).toEqual([
      "docs/broken.md:29: the link ../docs/operations.md#alert names an anchor that is not a heading of docs/operations.md",
      "docs/broken.md:29: the link ../examples/nothing/main.ts points to a file that does not exist"
    ])
  })

  it("report a request to a route that does not exist", () => {
    expect(checkHttpBlocks(of("http", brokenBlocks))).toEqual([
      "fixture/broken.md:26: GET /api/v1/mcp/pool/fx is not a route of the monitoring API"
    ])
  })
})
