/**
 * A server's stderr as lines: split from the chunks its pipe delivers, handed on one by one, and
 * the last few kept (bounded in count and size) so that a failure can say what the server said.
 */

/** Longest stderr line handed on; a longer one is handed on unfinished, in pieces. */
const MAX_LINE = 64 * 1024
/** How many of the last lines are kept. */
export const STDERR_TAIL_LINES = 20
/** How many characters the kept lines may hold in all. */
export const STDERR_TAIL_CHARS = 4_096
/** How many characters of one line are kept: a longer line is cut, so that it leaves room for others. */
export const STDERR_TAIL_LINE_CHARS = 1_024

/** Cuts a line to what the tail keeps of one, marking the cut with `…`. */
const truncate = (line: string): string =>
  line.length <= STDERR_TAIL_LINE_CHARS ? line : `${line.slice(0, STDERR_TAIL_LINE_CHARS - 1)}…`

/** Splits stderr text into lines for `onLine` and keeps the last of them. */
export class StderrLines {
  private partial = ""
  private readonly kept: Array<string> = []
  private keptChars = 0
  private readonly onLine: (line: string) => void

  /** `onLine` receives each line without its line ending; it must not throw (a throw loses the chunk's other lines). */
  constructor(onLine: (line: string) => void) {
    this.onLine = onLine
  }

  /** Takes the next chunk of text; hands on every line it completes. */
  push(text: string): void {
    const lines = (this.partial + text).split("\n")
    this.partial = lines.pop() ?? ""
    for (const line of lines) this.emit(line)
    if (this.partial.length > MAX_LINE) this.flush()
  }

  /** Hands on the unfinished last line, if any (the pipe has ended, or it grew too long). */
  flush(): void {
    if (this.partial.length === 0) return
    const rest = this.partial
    this.partial = ""
    this.emit(rest)
  }

  /**
   * The last lines, oldest first: at most {@link STDERR_TAIL_LINES} lines and
   * {@link STDERR_TAIL_CHARS} characters in all, each cut to {@link STDERR_TAIL_LINE_CHARS}.
   */
  tail(): ReadonlyArray<string> {
    return [...this.kept]
  }

  private emit(raw: string): void {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw
    this.keep(truncate(line))
    this.onLine(line)
  }

  private keep(line: string): void {
    this.kept.push(line)
    this.keptChars += line.length
    while (this.kept.length > STDERR_TAIL_LINES || this.keptChars > STDERR_TAIL_CHARS) {
      this.keptChars -= this.kept.shift()?.length ?? 0
    }
  }
}
