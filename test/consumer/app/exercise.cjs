// What both programs do with the installed packages: a manager through the Promise API, against
// a stdio server started through `sh -c`, a few tool calls, close, and no process left behind.
const { spawnSync } = require("node:child_process")
const { join } = require("node:path")

const fail = (message) => {
  throw new Error(message)
}

/** The processes of the machine, but not the `ps` that lists them. */
const processes = () => {
  const ps = spawnSync("ps", ["-eo", "pid=,ppid=,stat=,args="], { encoding: "utf8" })
  if (ps.status !== 0) fail(`ps failed: ${ps.stderr}`)
  return ps.stdout
    .split("\n")
    .map((line) => /^\s*(\d+)\s+(\d+)\s+(\S+)\s+(.*)$/.exec(line))
    .filter((match) => match !== null)
    .map(([, pid, ppid, stat, args]) => ({ pid: Number(pid), ppid: Number(ppid), stat, args }))
    .filter((row) => row.pid !== ps.pid)
}

/** Every process below `root` (children, grandchildren, ...) in `rows`. */
const descendants = (rows, root) => {
  const found = []
  const queue = [root]
  while (queue.length > 0) {
    const parent = queue.shift()
    for (const row of rows.filter((candidate) => candidate.ppid === parent)) {
      found.push(row)
      queue.push(row.pid)
    }
  }
  return found
}

/** A zombie has exited already; only its parent has yet to collect its status. */
const running = (row) => !row.stat.startsWith("Z")

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Runs the scenario with the module namespaces the program loaded (`import` or `require`).
 * Throws with a message that says what went wrong.
 */
exports.exercise = async ({ core, express, fastify, opentelemetry }, label) => {
  // The packages load and export what their READMEs show.
  if (typeof core.createMcpConnectionManager !== "function") fail("@mcp-pool/core: no createMcpConnectionManager")
  if (typeof express.mcpMonitoringRouter !== "function") fail("@mcp-pool/express: no mcpMonitoringRouter")
  if (typeof fastify.mcpPool !== "function") fail("@mcp-pool/fastify: no mcpPool")
  if (typeof opentelemetry.createInstrumentedMcpConnectionManager !== "function") {
    fail("@mcp-pool/opentelemetry: no createInstrumentedMcpConnectionManager")
  }

  const server = join(__dirname, "server.mjs")
  // Not `exec`: the shell stays as the server's parent, so closing must end the whole group.
  const manager = await core.createMcpConnectionManager({
    servers: { echo: { command: "sh", args: ["-c", `'${process.execPath}' '${server}'; exit $?`] } },
    defaults: { minConnections: 2, maxConnections: 4 }
  })
  let closed = false
  try {
    const tools = manager.tools("echo")
    const { tools: listed } = await tools.listTools()
    if (!listed.some((tool) => tool.name === "echo")) fail(`listTools: no "echo" in ${JSON.stringify(listed)}`)
    const texts = [1, 2, 3, 4].map((n) => `${label} call ${n}`)
    const answers = await Promise.all(texts.map((text) => tools.callTool({ name: "echo", arguments: { text } })))
    const serverPids = new Set()
    answers.forEach((answer, index) => {
      const content = answer.content?.[0]
      if (answer.isError === true || content?.type !== "text")
        fail(`callTool: unexpected answer ${JSON.stringify(answer)}`)
      const { text, pid } = JSON.parse(content.text)
      if (text !== texts[index])
        fail(`callTool: echoed ${JSON.stringify(text)}, expected ${JSON.stringify(texts[index])}`)
      serverPids.add(pid)
    })

    const before = descendants(processes(), process.pid)
    for (const pid of serverPids) {
      if (!before.some((row) => row.pid === pid)) {
        fail(`the server process ${pid} is not a descendant of the program: ${JSON.stringify(before)}`)
      }
    }
    const servers = before.filter((row) => row.args.includes(server))
    if (servers.length < 4) {
      fail(`expected 2 shells and 2 servers (minConnections: 2), found ${JSON.stringify(servers)}`)
    }

    await manager.close()
    closed = true

    // close() ends every process; allow a moment for the exits to be collected. A process that
    // outlived its parent is no longer below the program, so the ones seen before are looked up too.
    const deadline = Date.now() + 3_000
    let left = []
    for (;;) {
      const rows = processes()
      const seen = new Set(before.map((row) => row.pid))
      left = [...descendants(rows, process.pid), ...rows.filter((row) => seen.has(row.pid) && row.ppid !== process.pid)]
        .filter(running)
        .filter((row, index, all) => all.findIndex((other) => other.pid === row.pid) === index)
      if (left.length === 0 || Date.now() > deadline) break
      await sleep(100)
    }
    if (left.length > 0) {
      fail(`processes left running after close():\n${left.map((row) => `  ${row.pid} ${row.args}`).join("\n")}`)
    }
    console.log(
      `${label}: ${answers.length} calls answered by ${serverPids.size} server process(es); ${before.length} processes before close, none after`
    )
  } finally {
    if (!closed) await manager.close().catch(() => {})
  }
}
