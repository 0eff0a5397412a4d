/**
 * The app's error answers, all JSON `{ "error": message }` and never a stack or a file path:
 * the pool's typed errors, the client's mistakes (a body that is not JSON, an unknown route), and 500.
 */
import { isMCPPoolError } from "@mcp-pool/core/Errors"
import type { FastifyReply, FastifyRequest } from "fastify"

/** The status of an error meant for the client: Fastify's own 4xx errors, such as a body that is not JSON. */
const clientStatus = (error: unknown): number | undefined => {
  if (typeof error !== "object" || error === null || !("statusCode" in error)) return undefined
  const { statusCode } = error
  return typeof statusCode === "number" && statusCode >= 400 && statusCode < 500 ? statusCode : undefined
}

/** Answers 404 for a route the app does not have (`app.setNotFoundHandler`). */
export const notFound = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> =>
  reply.code(404).send({ error: `no route for ${request.method} ${request.url}` })

/**
 * The app's error handler (`app.setErrorHandler`). An unknown server is a 404 and anything else
 * from the pool a 502, with the error's tag; a client error keeps its status and message;
 * anything else is logged here and answered as a bare 500.
 */
export const errorHandler = async (
  error: unknown,
  _request: FastifyRequest,
  reply: FastifyReply
): Promise<FastifyReply> => {
  if (isMCPPoolError(error)) {
    return reply.code(error._tag === "MCPServerNotFound" ? 404 : 502).send({ error: error.message, tag: error._tag })
  }
  const status = clientStatus(error)
  if (status !== undefined) {
    return reply.code(status).send({ error: error instanceof Error ? error.message : "Bad Request" })
  }
  console.error("fastify-app: request failed:", error)
  return reply.code(500).send({ error: "Internal Server Error" })
}
