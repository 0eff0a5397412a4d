// The packages loaded with `require`, as a CommonJS program does (Node's require of ES modules).
const core = require("@mcp-pool/core")
const express = require("@mcp-pool/express")
const fastify = require("@mcp-pool/fastify")
const opentelemetry = require("@mcp-pool/opentelemetry")
const { exercise } = require("./exercise.cjs")

exercise({ core, express, fastify, opentelemetry }, "cjs").catch((error) => {
  console.error(error instanceof Error ? error.message : error)
  process.exitCode = 1
})
