/**
 * Reads, without changing them, the event streams a Streamable HTTP server answers a POST
 * with, to learn which of its requests came on which call's stream (see `Attribution`).
 */
import type { FetchLike } from "@modelcontextprotocol/sdk/shared/transport.js"
import type { RequestId } from "@modelcontextprotocol/sdk/types.js"
import { isJSONRPCRequest } from "@modelcontextprotocol/sdk/types.js"
import { createParser } from "eventsource-parser"
import type { Attribution } from "./Attribution.js"

/** The server requests a handler may answer: only these are worth remembering. */
const ROUTED = new Set(["elicitation/create", "sampling/createMessage", "roots/list"])

/** The id of the one request a POST carries, or `undefined` (a notification, an answer, a batch). */
const requestIdOf = (body: unknown): RequestId | undefined => {
  if (typeof body !== "string") return undefined
  try {
    const message: unknown = JSON.parse(body)
    return isJSONRPCRequest(message) ? message.id : undefined
  } catch {
    return undefined
  }
}

/** Tells `attribution` of every routed server request found in `text` events of a call's stream. */
const watch = (attribution: Attribution, ours: RequestId): TransformStream<Uint8Array, Uint8Array> => {
  const decoder = new TextDecoder()
  const parser = createParser({
    onEvent: (event) => {
      try {
        const message: unknown = JSON.parse(event.data)
        if (isJSONRPCRequest(message) && ROUTED.has(message.method)) attribution.related(message.id, ours)
      } catch {
        // Not JSON: the SDK reports it; nothing to attribute.
      }
    }
  })
  return new TransformStream({
    transform: (chunk, controller) => {
      parser.feed(decoder.decode(chunk, { stream: true }))
      // Passed on after it was read: the SDK sees the request only once it is attributed.
      controller.enqueue(chunk)
    }
  })
}

/**
 * A `fetch` for the SDK's Streamable HTTP transport that watches the event stream answering
 * each POST of a request, and otherwise returns what `base` returns.
 */
export const attributingFetch =
  (attribution: Attribution, base: FetchLike = fetch): FetchLike =>
  async (url, init) => {
    const response = await base(url, init)
    if (init?.method !== "POST" || response.body === null) return response
    if (response.headers.get("content-type")?.includes("text/event-stream") !== true) return response
    const ours = requestIdOf(init.body)
    if (ours === undefined) return response
    return new Response(response.body.pipeThrough(watch(attribution, ours)), {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers
    })
  }
