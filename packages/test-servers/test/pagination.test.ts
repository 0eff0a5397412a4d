/**
 * Paged lists (`--page-size` / `pageSize`): every list answers in pages with `nextCursor`, the pages
 * together hold what one unpaged answer holds, and an unknown cursor is a JSON-RPC error.
 */
import { spawn } from "node:child_process"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { afterEach, describe, expect, it } from "vitest"
import { fixtureServerPath, fixtureToolNames, spawnHttpFixtureServer } from "../src/index.js"
import { transportNames, useFixture } from "./kit.js"

interface Paged<A> {
  readonly nextCursor?: string | undefined
  readonly items: ReadonlyArray<A>
}

/** Every page of a list, following `nextCursor` until it is gone. */
const allPages = async <A>(list: (cursor: string | undefined) => Promise<Paged<A>>): Promise<Array<Array<A>>> => {
  const pages: Array<Array<A>> = []
  let cursor: string | undefined
  do {
    const page = await list(cursor)
    pages.push([...page.items])
    cursor = page.nextCursor
  } while (cursor !== undefined)
  return pages
}

const pagesOf = (client: Client) => ({
  tools: () =>
    allPages(async (cursor) => {
      const { tools, nextCursor } = await client.listTools(cursor === undefined ? {} : { cursor })
      return { items: tools, nextCursor }
    }),
  prompts: () =>
    allPages(async (cursor) => {
      const { prompts, nextCursor } = await client.listPrompts(cursor === undefined ? {} : { cursor })
      return { items: prompts, nextCursor }
    }),
  resources: () =>
    allPages(async (cursor) => {
      const { resources, nextCursor } = await client.listResources(cursor === undefined ? {} : { cursor })
      return { items: resources, nextCursor }
    }),
  templates: () =>
    allPages(async (cursor) => {
      const { resourceTemplates, nextCursor } = await client.listResourceTemplates(
        cursor === undefined ? {} : { cursor }
      )
      return { items: resourceTemplates, nextCursor }
    })
})

const pageSize = 4

describe.each(transportNames)("paged lists over %s", (transportName) => {
  const paged = useFixture(transportName, { pageSize })
  const unpaged = useFixture(transportName)

  it("answers every list in pages that together hold the whole list", async () => {
    const client = await paged.connect()
    const whole = await unpaged.connect()
    const pages = pagesOf(client)

    const tools = await pages.tools()
    expect(tools.map((page) => page.length)).toEqual([
      ...Array.from({ length: Math.floor(fixtureToolNames.length / pageSize) }, () => pageSize),
      ...(fixtureToolNames.length % pageSize === 0 ? [] : [fixtureToolNames.length % pageSize])
    ])
    expect(tools.flat()).toEqual((await whole.listTools()).tools)
    expect(tools.flat().map((tool) => tool.name)).toEqual([...fixtureToolNames])

    // greeting and items 1 to 3: exactly one full page, so no cursor after it.
    const resources = await pages.resources()
    expect(resources.map((page) => page.length)).toEqual([4])
    expect(resources.flat()).toEqual((await whole.listResources()).resources)
    expect(await pages.prompts()).toEqual([(await whole.listPrompts()).prompts])
    expect(await pages.templates()).toEqual([(await whole.listResourceTemplates()).resourceTemplates])
  })

  it("gives the cursor of the next page, and a tool added since is on a later page", async () => {
    const client = await paged.connect()
    const first = await client.listTools()
    expect(first.tools.map((tool) => tool.name)).toEqual(fixtureToolNames.slice(0, pageSize))
    expect(first.nextCursor).toEqual(expect.any(String))
    await client.callTool({ name: "add_tool", arguments: { name: "late" } })
    const tools = (await pagesOf(client).tools()).flat()
    expect(tools.map((tool) => tool.name)).toEqual([...fixtureToolNames, "late"])
  })

  it("answers an unknown cursor with -32602 Invalid params", async () => {
    const client = await paged.connect()
    for (const list of [
      () => client.listTools({ cursor: "nope" }),
      () => client.listPrompts({ cursor: "nope" }),
      () => client.listResources({ cursor: "99" }),
      () => client.listResourceTemplates({ cursor: "-1" })
    ]) {
      await expect(list()).rejects.toMatchObject({ code: -32602, message: expect.stringContaining("Invalid cursor") })
    }
  })
})

describe("--page-size", () => {
  const stops: Array<() => Promise<void>> = []
  afterEach(async () => {
    for (const stop of stops.splice(0).toReversed()) await stop()
  })

  it("pages the lists of the HTTP bin", async () => {
    const server = await spawnHttpFixtureServer({ pageSize: 5 })
    stops.push(() => server.stop())
    const client = new Client({ name: "fixture-test", version: "1.0.0" })
    stops.push(() => client.close())
    await client.connect(new StreamableHTTPClientTransport(new URL(server.url)))
    const { tools, nextCursor } = await client.listTools()
    expect(tools.map((tool) => tool.name)).toEqual(fixtureToolNames.slice(0, 5))
    expect(nextCursor).toBe("5")
  })

  it("refuses a page size that is not a positive integer", async () => {
    for (const size of ["0", "-2", "two"]) {
      const child = spawn(process.execPath, [fixtureServerPath, "--page-size", size], { stdio: "pipe" })
      let stderr = ""
      child.stderr.setEncoding("utf8")
      child.stderr.on("data", (chunk: string) => {
        stderr += chunk
      })
      const code = await new Promise<number | null>((resolve) => child.once("exit", resolve))
      expect(code).toBe(2)
      expect(stderr).toContain(`bad page size: ${size}`)
    }
  })
})
