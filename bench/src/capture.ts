/**
 * Records what a stretch of code made the process print: `process` warnings (such as
 * MaxListenersExceededWarning) and everything written to stdout or stderr (`console` included).
 */

/** What was printed while a capture was on. */
export interface Captured {
  readonly warnings: ReadonlyArray<string>
  readonly output: ReadonlyArray<string>
}

type Write = typeof process.stdout.write

const tap = (stream: NodeJS.WriteStream, output: Array<string>): (() => void) => {
  const original = stream.write
  const write = (chunk: unknown, ...rest: Array<unknown>): boolean => {
    output.push(String(chunk))
    return Reflect.apply(original, stream, [chunk, ...rest]) === true
  }
  stream.write = write as Write
  return () => {
    stream.write = original
  }
}

/** Runs `f`, answering its value and what was printed meanwhile (which still reaches the terminal). */
export const capturing = async <A>(
  f: () => Promise<A>
): Promise<{ readonly value: A; readonly captured: Captured }> => {
  const warnings: Array<string> = []
  const output: Array<string> = []
  const onWarning = (warning: Error) => {
    warnings.push(`${warning.name}: ${warning.message}`)
  }
  const untaps = [tap(process.stdout, output), tap(process.stderr, output)]
  process.on("warning", onWarning)
  try {
    const value = await f()
    // Warnings are emitted on a later tick than the code that caused them.
    await new Promise((resolve) => setTimeout(resolve, 10))
    return { value, captured: { warnings, output } }
  } finally {
    process.off("warning", onWarning)
    for (const untap of untaps) untap()
  }
}
