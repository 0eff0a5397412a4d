// The packages loaded with `import`, as an ES module program does.
import * as core from "@mcp-pool/core"
import * as express from "@mcp-pool/express"
import * as fastify from "@mcp-pool/fastify"
import * as opentelemetry from "@mcp-pool/opentelemetry"
import { exercise } from "./exercise.cjs"

await exercise({ core, express, fastify, opentelemetry }, "esm")
