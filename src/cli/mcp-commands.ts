import { existsSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { DEFAULTS } from '../config/defaults.js';

// `guild mcp serve | stdio | status`: the MCP gateway from the command line. Heavy modules load
// inside the actions, so `guild --version` stays fast.

const MCP_PORT = DEFAULTS.mcp.port;
const TOKEN_ENV = 'GUILD_MCP_TOKEN';

function port(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`Expected a port from 0 to 65535, got '${v}'.`);
  return n;
}

/** The file named, else guild.yaml, else a client's .mcp.json in the current folder. */
function gatewayFile(file: string | undefined): string {
  if (file !== undefined) return file;
  if (!existsSync('guild.yaml') && existsSync('.mcp.json')) return '.mcp.json';
  return 'guild.yaml';
}

interface ServeOpts {
  port: number;
  host?: string;
  token?: string;
  budget?: string;
  json?: boolean;
}

/** `fail` prints a GuildError and exits with its code; `exit` exits (closing the terminal's descriptors after a hang-up). */
export function addMcpCommands(program: Command, fail: (e: unknown) => never, exit: (code: number) => never): void {
  const mcp = program.command('mcp').description('the MCP gateway: one governed, cached pool of MCP servers shared by every agent session');

  mcp
    .command('serve')
    .description('serve the MCP servers of a workflow file (mcp:) or a .mcp.json over streamable HTTP at /mcp')
    .argument('[file]', 'workflow file with an mcp: section, or a client .mcp.json (default guild.yaml, else .mcp.json)')
    .option('-p, --port <port>', `port (default ${MCP_PORT}; 0: any free port)`, port, MCP_PORT)
    .option('--host <address>', 'address to bind (default 127.0.0.1; any other needs a token)')
    .option('--token <token>', `token every request must carry (default: $${TOKEN_ENV})`)
    .option('--budget <size>', 'memory budget for the backends (e.g. 2GB)')
    .option('--json', 'print one JSON line {url, pid, servers} when serving')
    .action(async (file: string | undefined, opts: ServeOpts) => {
      let running: Awaited<ReturnType<typeof import('../gateway/standalone.js').startStandalone>> | null = null;
      try {
        const { startStandalone } = await import('../gateway/standalone.js');
        running = await startStandalone({
          file: gatewayFile(file),
          port: opts.port,
          ...(opts.host !== undefined && { host: opts.host }),
          token: opts.token ?? process.env[TOKEN_ENV] ?? null,
          ...(opts.budget !== undefined && { budget: opts.budget }),
          onWarning: (w) => process.stderr.write(`guild: warning: ${w}\n`),
        });
        const servers = running.servers;
        process.stdout.write(
          opts.json
            ? `${JSON.stringify({ url: running.url, pid: process.pid, servers })}\n`
            : `guild mcp: serving ${running.url} (${servers.length} server${servers.length === 1 ? '' : 's'}: ${servers.join(', ')})\n`,
        );
      } catch (e) {
        await running?.close();
        fail(e);
      }
      const r = running!;
      let stopping = false;
      const stop = (): void => {
        if (stopping) return;
        stopping = true;
        void r.close().then(
          () => exit(0),
          (e: unknown) => fail(e),
        );
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      process.once('SIGHUP', stop);
    });

  mcp
    .command('stdio')
    .description('speak MCP over stdin/stdout to the gateway of a file: the running one, else one started here for as long as this lasts')
    .argument('[file]', 'workflow file with an mcp: section, or a client .mcp.json (default guild.yaml, else .mcp.json)')
    .option('--budget <size>', 'memory budget when this starts the gateway')
    .action(async (file: string | undefined, opts: { budget?: string }) => {
      try {
        const { stdioGateway } = await import('../gateway/standalone.js');
        await stdioGateway({
          file: gatewayFile(file),
          ...(opts.budget !== undefined && { budget: opts.budget }),
          token: process.env[TOKEN_ENV] ?? null,
          onWarning: (w) => process.stderr.write(`guild: warning: ${w}\n`),
        });
        exit(0);
      } catch (e) {
        fail(e);
      }
    });

  mcp
    .command('status')
    .description('what the running gateway of a file is doing: servers, backends, memory, latency, cache')
    .argument('[file]', 'its workflow file or .mcp.json (default guild.yaml, else .mcp.json)')
    .option('--url <url>', "the gateway's /mcp address (default: the one the file's folder records)")
    .option('--token <token>', `its token (default: $${TOKEN_ENV})`)
    .option('--json', 'print the /status JSON')
    .action(async (file: string | undefined, opts: { url?: string; token?: string; json?: boolean }) => {
      try {
        const { fetchGatewayStatus } = await import('../gateway/standalone.js');
        const { formatGatewayStatus } = await import('./mcp-status-format.js');
        const status = await fetchGatewayStatus({ file: gatewayFile(file), url: opts.url ?? null, token: opts.token ?? process.env[TOKEN_ENV] ?? null });
        process.stdout.write(opts.json ? `${JSON.stringify(status, null, 2)}\n` : `${formatGatewayStatus(status)}\n`);
      } catch (e) {
        fail(e);
      }
    });
}
