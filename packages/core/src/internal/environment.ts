/**
 * The environment a stdio server is started with: a safe default, or what its entry asks to
 * inherit (`inheritEnv`), with the entry's own `env` on top.
 */
import { getDefaultEnvironment } from "@modelcontextprotocol/sdk/client/stdio.js"
import type { StdioServerConfig } from "../ServerConfig.js"

/**
 * Variables that tell a process how to reach the network, which servers behind `npx`, `uvx`
 * or `pip` need to download themselves behind a proxy or a private certificate authority.
 * Added to the SDK's default (`PATH`, `HOME`, `USER`, `SHELL`, `TERM`, `LOGNAME`).
 */
export const NETWORK_VARIABLES: ReadonlyArray<string> = [
  "HTTP_PROXY",
  "HTTPS_PROXY",
  "NO_PROXY",
  "ALL_PROXY",
  "http_proxy",
  "https_proxy",
  "no_proxy",
  "all_proxy",
  "NODE_EXTRA_CA_CERTS",
  "SSL_CERT_FILE",
  "SSL_CERT_DIR",
  "REQUESTS_CA_BUNDLE",
  "TMPDIR",
  "LANG"
]

const pick = (from: Readonly<Record<string, string | undefined>>, names: Iterable<string>): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const name of names) {
    const value = from[name]
    // A value that starts with "()" is a shell function: never handed on (as the SDK does).
    if (value !== undefined && !value.startsWith("()")) out[name] = value
  }
  return out
}

/**
 * What a stdio server gets of `host` (this process's environment) before its entry's `env`:
 *
 * - by default, the SDK's safe variables and {@link NETWORK_VARIABLES}: no secret of this
 *   process reaches a server that was not given it;
 * - `inheritEnv: true`: all of it (what VS Code does for its MCP servers);
 * - `inheritEnv: ["VAR", ...]`: the default and those variables.
 */
export const inherited = (
  server: Pick<StdioServerConfig, "inheritEnv">,
  host: Readonly<Record<string, string | undefined>>
): Record<string, string> => {
  const inheritEnv = server.inheritEnv
  if (inheritEnv === true) return pick(host, Object.keys(host))
  const names = [...NETWORK_VARIABLES, ...(Array.isArray(inheritEnv) ? inheritEnv : [])]
  return { ...getDefaultEnvironment(), ...pick(host, names) }
}
