/**
 * Type-checks TypeScript code blocks with the repository's compiler and compiler options, all
 * blocks in one `Program`: each block is a module of its own, placed (in memory) inside this
 * package so that `@mcp-pool/*`, `effect` and the other imports resolve as they do for a user.
 */
import { join } from "node:path"
import ts from "typescript"
import { type Block, root, where } from "./markdown.js"

const packageDir = join(root, "packages", "docs-check")

/** The compiler options of `tsconfig.base.json`, for checking only. */
export const compilerOptions = (): ts.CompilerOptions => {
  const path = join(root, "tsconfig.base.json")
  const read = ts.readConfigFile(path, (p) => ts.sys.readFile(p))
  if (read.error !== undefined) throw new Error(ts.flattenDiagnosticMessageText(read.error.messageText, "\n"))
  const parsed = ts.parseJsonConfigFileContent(read.config, ts.sys, root, undefined, path)
  const { tsBuildInfoFile: _, ...options } = parsed.options
  return {
    ...options,
    noEmit: true,
    composite: false,
    incremental: false,
    declaration: false,
    declarationMap: false,
    sourceMap: false
  }
}

/** The in-memory file name of a block: `packages/docs-check/snippets/docs_configuration.md_L120.ts`. */
const fileNameOf = (block: Block): string =>
  join(packageDir, "snippets", `${block.file.replaceAll(/[/\\]/g, "_")}_L${block.line}.ts`)

/** The result of type-checking a set of blocks. */
export interface TypeCheck {
  /** One line per diagnostic: `docs/configuration.md:120: Property 'foo' does not exist on ...` */
  readonly errors: ReadonlyArray<string>
  /** The blocks that were part of the program and had their diagnostics read. */
  readonly checked: ReadonlyArray<Block>
}

/**
 * Type-checks every block (syntax and types). A block is made a module (`export {}` is
 * appended after its last line), so blocks never see each other's declarations.
 */
export const typeCheck = (blocks: ReadonlyArray<Block>): TypeCheck => {
  const options = compilerOptions()
  const sources = new Map<string, { readonly block: Block; readonly text: string }>()
  for (const block of blocks) {
    const name = fileNameOf(block)
    if (sources.has(name)) throw new Error(`${where(block)}: two blocks map to ${name}`)
    sources.set(name, { block, text: `${block.code}\nexport {}\n` })
  }
  const host = ts.createCompilerHost(options, true)
  const getSourceFile = host.getSourceFile.bind(host)
  const fileExists = host.fileExists.bind(host)
  const readFile = host.readFile.bind(host)
  host.getCurrentDirectory = () => packageDir
  host.fileExists = (name) => sources.has(name) || fileExists(name)
  host.readFile = (name) => sources.get(name)?.text ?? readFile(name)
  host.getSourceFile = (name, languageVersion, onError, shouldCreate) => {
    const source = sources.get(name)
    return source === undefined
      ? getSourceFile(name, languageVersion, onError, shouldCreate)
      : ts.createSourceFile(name, source.text, languageVersion, true, ts.ScriptKind.TS)
  }
  const program = ts.createProgram({ rootNames: Array.from(sources.keys()), options, host })

  const errors: Array<string> = []
  const report = (diagnostic: ts.Diagnostic) => {
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n  ")
    const file = diagnostic.file
    if (file === undefined || diagnostic.start === undefined) {
      errors.push(`TS${diagnostic.code}: ${message}`)
      return
    }
    const { line } = file.getLineAndCharacterOfPosition(diagnostic.start)
    const source = sources.get(file.fileName)
    errors.push(
      source === undefined
        ? `${file.fileName}:${line + 1}: TS${diagnostic.code}: ${message}`
        : `${where(source.block, line)}: ${message}`
    )
  }
  program.getOptionsDiagnostics().forEach(report)
  program.getGlobalDiagnostics().forEach(report)
  const checked: Array<Block> = []
  for (const [name, { block }] of sources) {
    const file = program.getSourceFile(name)
    if (file === undefined) {
      errors.push(`${where(block)}: the block is missing from the program`)
      continue
    }
    program.getSyntacticDiagnostics(file).forEach(report)
    program.getSemanticDiagnostics(file).forEach(report)
    checked.push(block)
  }
  if (errors.some((error) => error.includes("Cannot find module '@mcp-pool/"))) {
    errors.push("(the blocks import the packages' dist/*.d.ts: run `npx -y pnpm@12.21.0 build` first)")
  }
  return { errors, checked }
}
