/**
 * Finds the documents to check and the fenced code blocks in them, with the line each block
 * starts on, so that every finding can name `docs/file.md:line`.
 */
import { readdirSync, readFileSync } from "node:fs"
import { join, relative, resolve } from "node:path"
import { fileURLToPath } from "node:url"

/** The repository's root directory. */
export const root = resolve(fileURLToPath(new URL(".", import.meta.url)), "../../..")

/** A markdown file: its path relative to the repository root, and its text. */
export interface Doc {
  readonly file: string
  readonly text: string
}

/** One fenced code block. */
export interface Block {
  /** The markdown file, relative to the repository root. */
  readonly file: string
  /** The language of the fence (`ts`, `json`, ...), lower case; `""` when the fence names none. */
  readonly lang: string
  /** The 1-based line of the block's first line of code (the line after the opening fence). */
  readonly line: number
  /** The code, with the fence's indentation removed. */
  readonly code: string
  /** The paragraph just before the block (its lines joined by spaces), for blocks that need context. */
  readonly before: string
}

/** README.md and every docs/*.md. */
export const readDocs = (): ReadonlyArray<Doc> => {
  const docs = readdirSync(join(root, "docs"))
    .filter((name) => name.endsWith(".md"))
    .toSorted()
    .map((name) => join(root, "docs", name))
  return [join(root, "README.md"), ...docs].map((path) => ({
    file: relative(root, path),
    text: readFileSync(path, "utf8")
  }))
}

const opening = /^( {0,3})(`{3,}|~{3,})\s*([^\s`]*)[^`]*$/

/** The fenced code blocks of a markdown text (CommonMark fences, inside list items too). */
export const blocks = (doc: Doc): ReadonlyArray<Block> => {
  const lines = doc.text.split("\n")
  const found: Array<Block> = []
  let index = 0
  while (index < lines.length) {
    const raw = lines[index] ?? ""
    const indent = /^ */.exec(raw)?.[0].length ?? 0
    // A fence may be indented by a list item; CommonMark allows up to 3 more spaces.
    const open = opening.exec(raw.slice(Math.max(0, indent - 3)))
    if (open === null) {
      index++
      continue
    }
    const fence = open[2] ?? "```"
    const lang = (open[3] ?? "").toLowerCase()
    const closing = new RegExp(`^\\s*${fence[0] === "`" ? "`" : "~"}{${fence.length},}\\s*$`)
    const code: Array<string> = []
    let end = index + 1
    while (end < lines.length && !closing.test(lines[end] ?? "")) {
      const line = lines[end] ?? ""
      const strip = Math.min(indent, /^ */.exec(line)?.[0].length ?? 0)
      code.push(line.slice(strip))
      end++
    }
    found.push({ file: doc.file, lang, line: index + 2, code: code.join("\n"), before: paragraphBefore(lines, index) })
    index = end + 1
  }
  return found
}

const paragraphBefore = (lines: ReadonlyArray<string>, fenceIndex: number): string => {
  let start = fenceIndex - 1
  while (start >= 0 && (lines[start] ?? "").trim() === "") start--
  const paragraph: Array<string> = []
  while (start >= 0 && (lines[start] ?? "").trim() !== "" && !/^\s*(`{3,}|~{3,})/.test(lines[start] ?? "")) {
    paragraph.unshift((lines[start] ?? "").trim())
    start--
  }
  return paragraph.join(" ")
}

/** `docs/file.md:12` */
export const where = (block: { readonly file: string; readonly line: number }, offset = 0): string =>
  `${block.file}:${block.line + offset}`
