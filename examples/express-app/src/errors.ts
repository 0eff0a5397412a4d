/**
 * The app's error answers, all JSON `{ "error": message }` and never a stack or a file path:
 * the pool's typed errors, the client's mistakes (a body that is not JSON, an unknown route), and 500.
 */
import { isMCPPoolError } from "@mcp-pool/core/Errors"
import type { NextFunction, Request, Response } from "express"

/**
 * The status of an error meant for the client: body-parser's and http-errors' 4xx errors
 * (`status` and `expose`), such as a body that is not JSON (400) or too large (413).
 */
const clientStatus = (error: unknown): number | undefined => {
  if (typeof error !== "object" || error === null || !("status" in error)) return undefined
  const { status } = error
  const exposed = !("expose" in error) || error.expose !== false
  return typeof status === "number" && status >= 400 && status < 500 && exposed ? status : undefined
}

/** Answers 404 for a route the app does not have; mount it after every route. */
export const notFound = (req: Request, res: Response): void => {
  res.status(404).json({ error: `no route for ${req.method} ${req.originalUrl}` })
}

/**
 * The app's error handler; mount it last. An unknown server is a 404 and anything else from the
 * pool a 502, with the error's tag; a client error keeps its status and message; anything else is
 * logged here and answered as a bare 500.
 */
export const errorHandler = (error: unknown, _req: Request, res: Response, next: NextFunction): void => {
  // Part of the answer has gone: only Express can end the connection.
  if (res.headersSent) return next(error)
  if (isMCPPoolError(error)) {
    res.status(error._tag === "MCPServerNotFound" ? 404 : 502).json({ error: error.message, tag: error._tag })
    return
  }
  const status = clientStatus(error)
  if (status !== undefined) {
    res.status(status).json({ error: error instanceof Error ? error.message : "Bad Request" })
    return
  }
  console.error("express-app: request failed:", error)
  res.status(500).json({ error: "Internal Server Error" })
}
