// The HTTP endpoints of a slotctl process (health, metrics and, on the coordinator, the status page): mutual TLS
// with the cluster CA like every gRPC link, and each route names the role it needs — a client certificate's OU,
// checked before the route runs. A request without a certificate of the cluster CA gets 401 and one with too low a
// role 403, each saying how to get the right certificate (the handshake lets them through so that they can be told).
// With --insecure: plain HTTP, nobody identified, every route open (and said so at start).
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { constants } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { ConfigError } from '../errors.js';
import { type CertificateFiles, identityOf } from '../tls/credentials.js';
import { OPERATOR_CERTIFICATE_ROLES } from '../tls/options.js';

export type HttpRole = (typeof OPERATOR_CERTIFICATE_ROLES)[number];

export interface HttpCaller {
  /** The certificate's name, or 'insecure'. */
  name: string;
  role: string;
}

export interface HttpRoute {
  /** The exact path (no prefix matching: an unknown path is a 404 that lists the known ones). */
  path: string;
  /** The least role that may call it (each role can do what the ones before it can). */
  role: HttpRole;
  /** One line for the index and for `--help`. */
  what: string;
  handle(req: IncomingMessage, res: ServerResponse, caller: HttpCaller): void | Promise<void>;
}

const HANDSHAKE_MS = 5000;
const MAX_CONNECTIONS = 256;
const MAX_PER_ADDRESS = 32;

const rank = (role: string): number => (OPERATOR_CERTIFICATE_ROLES as readonly string[]).indexOf(role);

/** Parses `HOST:PORT` (`[::1]:PORT` for IPv6); a clear ConfigError naming the flag otherwise. */
export function parseListen(value: string, flag: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new ConfigError(`${flag} ${JSON.stringify(value)} is not HOST:PORT`, { hint: `for example ${flag} 127.0.0.1:7480, or ${flag} off` });
  return { host: m[1] ?? m[2]!, port };
}

function send(res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
  res.end(body);
}

export interface ObserveServerOptions {
  /** This process's certificates (undefined only with --insecure). */
  certificates: CertificateFiles | undefined;
  routes: readonly HttpRoute[];
  log: Logger;
  /** Which program serves (for logs and the index). */
  program: string;
}

/** The health, metrics and status endpoints of one process. */
export class ObserveServer {
  private server: Server | undefined;
  private stopRenewals: (() => void) | undefined;
  private readonly routes: Map<string, HttpRoute>;
  private readonly refusals = new Map<string, number>();
  /** Every TCP connection, from its first byte (a handshake that never ends is one too: close() ends them all). */
  private readonly sockets = new Set<Socket>();
  private readonly perAddress = new Map<string, number>();
  port = 0;

  constructor(private readonly options: ObserveServerOptions) {
    this.routes = new Map(options.routes.map((r) => [r.path, r]));
  }

  async listen(address: string, flag = '--http-listen'): Promise<number> {
    const { host, port } = parseListen(address, flag);
    const files = this.options.certificates;
    const handler = (req: IncomingMessage, res: ServerResponse) => this.dispatch(req, res);
    let server: Server;
    if (files) {
      // requestCert without rejecting: a caller without a good certificate is answered 401 with the fix. No session
      // resumption: a resumed session keeps the certificate it began with, past a CA rotation or the certificate's end.
      const context = () => ({ ...files.material, minVersion: 'TLSv1.2' as const, secureOptions: constants.SSL_OP_NO_TICKET, sessionTimeout: 1 });
      const tls = createHttpsServer({ ...context(), requestCert: true, rejectUnauthorized: false, handshakeTimeout: HANDSHAKE_MS }, handler);
      // a renewed certificate (or CA) is taken for new connections, as the gRPC server's provider does
      this.stopRenewals = files.onRenewal(() => tls.setSecureContext(context()));
      server = tls;
    } else {
      server = createHttpServer(handler);
    }
    // bounded: a slow or hostile client cannot hold a request open, and the connections are few (scrapers, a load
    // balancer, a handful of status pages)
    server.headersTimeout = 10_000;
    server.requestTimeout = 15_000;
    server.keepAliveTimeout = 5_000;
    server.maxConnections = MAX_CONNECTIONS;
    // connections counted per address from the first byte: whoever can reach the port cannot take every connection
    // (nor hold them in a handshake) and starve a load balancer's probe or a scrape
    server.on('connection', (socket: Socket) => {
      const from = socket.remoteAddress ?? '?';
      const n = (this.perAddress.get(from) ?? 0) + 1;
      if (n > MAX_PER_ADDRESS) {
        socket.destroy();
        return;
      }
      this.perAddress.set(from, n);
      this.sockets.add(socket);
      socket.once('close', () => {
        this.sockets.delete(socket);
        const left = (this.perAddress.get(from) ?? 1) - 1;
        if (left > 0) this.perAddress.set(from, left);
        else this.perAddress.delete(from);
      });
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.port = (server.address() as { port: number }).port;
    const scheme = files ? 'https' : 'http';
    this.options.log.info({ address, port: this.port, tls: Boolean(files), paths: [...this.routes.keys()] }, `${this.options.program}: HTTP endpoints on ${scheme}://${host.includes(':') ? `[${host}]` : host}:${this.port}`);
    if (!files) this.options.log.warn('HTTP endpoints without TLS (--insecure): anyone who reaches the port sees the cluster');
    return this.port;
  }

  /** Stops accepting; open connections (a status page's stream) are closed. */
  async close(): Promise<void> {
    this.stopRenewals?.();
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      // closeAllConnections sees only connections past their handshake
      for (const socket of this.sockets) socket.destroy();
    });
  }

  private callerOf(req: IncomingMessage): HttpCaller | string {
    if (!this.options.certificates) return { name: 'insecure', role: 'admin' };
    const socket = req.socket as TLSSocket;
    if (!socket.authorized) return socket.getPeerCertificate?.() && Object.keys(socket.getPeerCertificate()).length ? `certificate refused (${String(socket.authorizationError)})` : 'no client certificate';
    const id = identityOf(socket.getPeerCertificate().subject as unknown as Record<string, string>);
    return id ? { name: id.name, role: id.role } : 'the certificate names no slotctl identity';
  }

  private dispatch(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0]!;
    const caller = this.callerOf(req);
    if (typeof caller === 'string') {
      this.refused(req, caller);
      // nothing more on this connection: a caller without a certificate holds none open
      res.setHeader('connection', 'close');
      send(res, 401, `${caller}: these endpoints need a client certificate of the cluster CA with role reader or higher\n(an admin issues one: slotctl pki issue operator NAME --role reader --dir PKI-DIR --out DIR)\n`);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      send(res, 405, `${req.method} is not served here: these endpoints only look (GET)\n`);
      return;
    }
    const route = this.routes.get(path);
    if (!route) {
      send(res, 404, `no ${path} here; ${this.options.program} serves:\n${[...this.routes.values()].map((r) => `  ${r.path}  ${r.what}`).join('\n')}\n`);
      return;
    }
    if (rank(caller.role) < rank(route.role)) {
      this.refused(req, `${caller.name} has role ${caller.role || 'none'}`);
      send(res, 403, `${caller.name} has role ${caller.role || 'none'}: ${path} needs role ${route.role}\n(an admin issues one: slotctl pki issue operator ${caller.name} --role ${route.role})\n`);
      return;
    }
    Promise.resolve()
      .then(() => route.handle(req, res, caller))
      .catch((err: unknown) => {
        this.options.log.error({ err, path }, 'HTTP endpoint failed');
        if (!res.headersSent) send(res, 500, `internal error serving ${path}: see the ${this.options.program} log\n`);
        else res.destroy();
      });
  }

  /** A refused request is logged at most once a minute per address (anyone can cause them). */
  private refused(req: IncomingMessage, why: string): void {
    const from = req.socket.remoteAddress ?? '?';
    const now = Date.now();
    if ((this.refusals.get(from) ?? 0) > now - 60_000) return;
    if (this.refusals.size > 1000) this.refusals.clear();
    this.refusals.set(from, now);
    this.options.log.warn({ from, path: req.url, why }, 'HTTP request refused');
  }
}

export { send as sendHttp };
