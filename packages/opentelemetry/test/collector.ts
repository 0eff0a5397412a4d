/**
 * A stand-in OpenTelemetry Collector for the tests: OTLP over HTTP (JSON and protobuf) and
 * over gRPC on 127.0.0.1, keeping what arrives, decoded with the OTLP protobuf definitions
 * that `@opentelemetry/otlp-transformer` shipped as protobufjs code (0.216 is the last with both
 * the trace and the metrics messages; later versions encode by hand and ship no decoder).
 */
import * as grpc from "@grpc/grpc-js"
import * as Effect from "effect/Effect"
import { createServer, type IncomingHttpHeaders } from "node:http"
import { gunzipSync } from "node:zlib"
import root from "otlp-transformer-protobufjs/build/src/generated/root.js"

/** One export request as it arrived. */
export interface Received {
  readonly transport: "http" | "grpc"
  readonly signal: "traces" | "metrics"
  readonly path: string
  readonly contentType: string
  readonly contentEncoding: string
  readonly headers: Readonly<Record<string, string>>
  readonly body: Buffer
}

export interface Span {
  readonly name: string
  /** OTLP's `Span.SpanKind`: 1 internal, 2 server, 3 client. */
  readonly kind: number
  readonly attributes: Readonly<Record<string, unknown>>
  readonly resource: Readonly<Record<string, unknown>>
  readonly scope: string
}

export interface Point {
  readonly attributes: Readonly<Record<string, unknown>>
  /** A histogram's sample count. */
  readonly count?: number
  /** A sum's or gauge's value. */
  readonly value?: number
}

export interface Metric {
  readonly name: string
  readonly unit: string
  readonly type: "histogram" | "sum" | "gauge" | "other"
  readonly points: ReadonlyArray<Point>
  readonly resource: Readonly<Record<string, unknown>>
}

// --- decoding --------------------------------------------------------------------------------

interface MessageType {
  decode(bytes: Uint8Array): object
  fromObject(object: object): object
  toObject(message: object, options: object): object
}

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null

const isMessageType = (u: unknown): u is MessageType =>
  (typeof u === "function" || isRecord(u)) &&
  "decode" in u &&
  typeof u.decode === "function" &&
  "fromObject" in u &&
  "toObject" in u

/** A message type of the generated protobufjs code, by its full name. */
const messageType = (name: string): MessageType => {
  let node: unknown = root
  for (const part of name.split("."))
    node = isRecord(node) || typeof node === "function" ? Reflect.get(node, part) : undefined
  if (!isMessageType(node)) throw new Error(`no protobuf message ${name}`)
  return node
}

const TraceRequest = messageType("opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest")
const MetricsRequest = messageType("opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest")

const array = (u: unknown): Array<unknown> => (Array.isArray(u) ? u : [])
const field = (u: unknown, key: string): unknown => (isRecord(u) ? u[key] : undefined)
const number = (u: unknown): number | undefined =>
  typeof u === "number" ? u : typeof u === "string" && u !== "" ? Number(u) : undefined

const anyValue = (value: unknown): unknown => {
  if (!isRecord(value)) return undefined
  if ("stringValue" in value) return value["stringValue"]
  if ("boolValue" in value) return value["boolValue"]
  if ("intValue" in value) return number(value["intValue"])
  if ("doubleValue" in value) return number(value["doubleValue"])
  if ("arrayValue" in value) return array(field(value["arrayValue"], "values")).map(anyValue)
  return undefined
}

const attributes = (list: unknown): Record<string, unknown> =>
  Object.fromEntries(array(list).map((kv) => [String(field(kv, "key")), anyValue(field(kv, "value"))]))

const parseJson = (body: Buffer): object => {
  const parsed: unknown = JSON.parse(body.toString("utf8"))
  if (!isRecord(parsed)) throw new Error("an OTLP/JSON body that is not an object")
  return parsed
}

/**
 * The request as plain objects: protobuf decoded, JSON parsed; both through the message
 * type, so that they end up in one shape (numbers for 64-bit integers and enums).
 */
const toPlain = (type: MessageType, received: Received): unknown => {
  const body = received.contentEncoding === "gzip" ? gunzipSync(received.body) : received.body
  const message = received.contentType.includes("json") ? type.fromObject(parseJson(body)) : type.decode(body)
  return type.toObject(message, { longs: Number, enums: Number, bytes: String, defaults: false, arrays: true })
}

/** Every span of the trace export requests received. */
export const spans = (received: ReadonlyArray<Received>): Array<Span> =>
  received
    .filter((r) => r.signal === "traces")
    .flatMap((r) =>
      array(field(toPlain(TraceRequest, r), "resourceSpans")).flatMap((rs) => {
        const resource = attributes(field(field(rs, "resource"), "attributes"))
        return array(field(rs, "scopeSpans")).flatMap((ss) =>
          array(field(ss, "spans")).map((span): Span => ({
            name: String(field(span, "name")),
            kind: number(field(span, "kind")) ?? 0,
            attributes: attributes(field(span, "attributes")),
            resource,
            scope: String(field(field(ss, "scope"), "name"))
          }))
        )
      })
    )

/** The metrics of one metrics export request. */
export const metrics = (received: Received): Array<Metric> =>
  array(field(toPlain(MetricsRequest, received), "resourceMetrics")).flatMap((rm) => {
    const resource = attributes(field(field(rm, "resource"), "attributes"))
    return array(field(rm, "scopeMetrics")).flatMap((sm) =>
      array(field(sm, "metrics")).map((metric): Metric => {
        const [type, data] = (["histogram", "sum", "gauge"] as const)
          .map((t) => [t, field(metric, t)] as const)
          .find(([, d]) => d !== undefined) ?? ["other" as const, undefined]
        return {
          name: String(field(metric, "name")),
          unit: String(field(metric, "unit") ?? ""),
          type,
          resource,
          points: array(field(data, "dataPoints")).map((point): Point => {
            const count = number(field(point, "count"))
            const value = number(field(point, "asInt")) ?? number(field(point, "asDouble"))
            return {
              attributes: attributes(field(point, "attributes")),
              ...(count === undefined ? {} : { count }),
              ...(value === undefined ? {} : { value })
            }
          })
        }
      })
    )
  })

// --- servers ---------------------------------------------------------------------------------

const signalOf = (path: string): Received["signal"] => (path.includes("metric") ? "metrics" : "traces")

const headersOf = (headers: IncomingHttpHeaders): Record<string, string> =>
  Object.fromEntries(
    Object.entries(headers).flatMap(([key, value]) => (typeof value === "string" ? [[key, value]] : []))
  )

export interface Collector {
  /** `http://127.0.0.1:<port>` */
  readonly url: string
  readonly received: () => ReadonlyArray<Received>
}

/**
 * An OTLP/HTTP receiver on 127.0.0.1: accepts any POST (the path tells the signal), answers
 * an empty success in the request's encoding; closed with the scope.
 */
export const httpCollector = Effect.acquireRelease(
  Effect.callback<{ server: ReturnType<typeof createServer>; collector: Collector }>((resume) => {
    const received: Array<Received> = []
    const server = createServer((request, response) => {
      const chunks: Array<Buffer> = []
      request.on("data", (chunk: Buffer) => chunks.push(chunk))
      request.on("end", () => {
        const path = request.url ?? "/"
        const contentType = request.headers["content-type"] ?? ""
        received.push({
          transport: "http",
          signal: signalOf(path),
          path,
          contentType,
          contentEncoding: request.headers["content-encoding"] ?? "",
          headers: headersOf(request.headers),
          body: Buffer.concat(chunks)
        })
        const json = contentType.includes("json")
        response.writeHead(200, { "content-type": json ? "application/json" : "application/x-protobuf" })
        response.end(json ? "{}" : undefined)
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      resume(Effect.succeed({ server, collector: { url: `http://127.0.0.1:${port}`, received: () => [...received] } }))
    })
  }),
  ({ server }) =>
    Effect.callback<void>((resume) => {
      server.closeAllConnections()
      server.close(() => resume(Effect.void))
    })
).pipe(Effect.map(({ collector }) => collector))

const exportMethod = (service: string): grpc.ServiceDefinition => ({
  Export: {
    path: `/${service}/Export`,
    requestStream: false,
    responseStream: false,
    requestSerialize: (message: Buffer) => message,
    requestDeserialize: (bytes: Buffer) => bytes,
    // An empty Export*ServiceResponse.
    responseSerialize: (message: Buffer) => message,
    responseDeserialize: (bytes: Buffer) => bytes
  }
})

/** An OTLP/gRPC receiver (trace and metrics services) on 127.0.0.1, without TLS. */
export const grpcCollector = Effect.acquireRelease(
  Effect.callback<{ server: grpc.Server; collector: Collector }, Error>((resume) => {
    const received: Array<Received> = []
    const server = new grpc.Server()
    const handler =
      (signal: Received["signal"], path: string): grpc.handleUnaryCall<Buffer, Buffer> =>
      (call, callback) => {
        const metadata = call.metadata.getMap()
        received.push({
          transport: "grpc",
          signal,
          path,
          contentType: "application/grpc",
          contentEncoding: "",
          headers: Object.fromEntries(Object.entries(metadata).map(([key, value]) => [key, String(value)])),
          body: call.request
        })
        callback(null, Buffer.alloc(0))
      }
    const trace = "opentelemetry.proto.collector.trace.v1.TraceService"
    const metric = "opentelemetry.proto.collector.metrics.v1.MetricsService"
    server.addService(exportMethod(trace), { Export: handler("traces", `/${trace}/Export`) })
    server.addService(exportMethod(metric), { Export: handler("metrics", `/${metric}/Export`) })
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, port) => {
      resume(
        error === null
          ? Effect.succeed({ server, collector: { url: `http://127.0.0.1:${port}`, received: () => [...received] } })
          : Effect.fail(error)
      )
    })
  }),
  ({ server }) =>
    Effect.callback<void>((resume) => {
      server.tryShutdown(() => resume(Effect.void))
    }).pipe(Effect.timeoutOption(2_000), Effect.ensuring(Effect.sync(() => server.forceShutdown())))
).pipe(Effect.map(({ collector }) => collector))
