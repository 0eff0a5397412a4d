#!/usr/bin/env node
/**
 * An "npx-style" wrapper: `node wrapper.js <command> [args...]` runs the command as a child with
 * inherited stdio, forwards no signals and exits with the child's code (the server is a grandchild).
 */
import { spawn } from "node:child_process"
import { constants } from "node:os"

const [command, ...args] = process.argv.slice(2)
if (command === undefined) {
  process.stderr.write("usage: wrapper.js <command> [args...]\n")
  process.exit(2)
}

const child = spawn(command, args, { stdio: "inherit" })
child.on("error", (error) => {
  process.stderr.write(`wrapper: cannot run ${command}: ${error.message}\n`)
  process.exit(127)
})
child.on("exit", (code, signal) => {
  // Like a shell: a child killed by a signal gives 128 + the signal's number.
  process.exit(code ?? (signal === null ? 1 : 128 + constants.signals[signal]))
})
