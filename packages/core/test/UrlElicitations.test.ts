/** The URL-mode elicitations a server's handlers answered, remembered until they complete (at most 1,000). */
import { describe, expect, it } from "vitest"
import { MAX_PENDING, UrlElicitations } from "../src/session/UrlElicitations.js"

const handler = () => {}

describe("URL-mode elicitations awaiting their completion", () => {
  it("a completion finds who answered, once", () => {
    const pending = new UrlElicitations()
    pending.answered("a", handler)
    expect(pending.completed("a")).toBe(handler)
    expect(pending.completed("a")).toBeUndefined()
    expect(pending.completed("never answered")).toBeUndefined()
  })

  it("past the limit the oldest is forgotten; one answered again counts as new", () => {
    const pending = new UrlElicitations()
    const handlers = Array.from({ length: MAX_PENDING + 1 }, () => () => {})
    handlers.forEach((each, i) => {
      pending.answered(String(i), each)
      // The first is answered again just before the limit: it is then one of the newest.
      if (i === MAX_PENDING - 1) pending.answered("0", handlers[0] ?? each)
    })
    expect(pending.completed("0")).toBe(handlers[0])
    expect(pending.completed("1")).toBeUndefined()
    expect(pending.completed(String(MAX_PENDING))).toBe(handlers[MAX_PENDING])
  })
})
