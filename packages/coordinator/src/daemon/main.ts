// slot-coordinator: the coordinator daemon. Exit codes: 0 clean stop, 1 refused to start (message says why).
import { join } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { SLOTCTL_VERSION, DAEMON_NICE, TLS_FLAG_HELP, type TlsFlags, certificatesFromFlags, parseNice, setOwnNice, watchLoopLag, createLogger, describeError, isUserError, parseDuration } from '@slotctl/shared';
import { Coordinator } from '../coordinator.js';

function duration(what: string) {
  return (value: string) => {
    try {
      return parseDuration(value, what);
    } catch (err) {
      throw new InvalidArgumentError(describeError(err));
    }
  };
}

const program = new Command('slot-coordinator')
  .description('The slotctl coordinator: keeps the cluster database, watches agent liveness and serves slotctl.')
  .version(SLOTCTL_VERSION)
  .option('--listen <host:port>', 'gRPC address for agents and slotctl', process.env.SLOTCTL_LISTEN ?? '127.0.0.1:7400')
  .option('--data-dir <dir>', 'directory for the database', process.env.SLOTCTL_DATA_DIR ?? '/var/lib/slotctl')
  .option('--db <file>', 'SQLite database file (default: DATA_DIR/coordinator.db)')
  .option('--heartbeat-interval <duration>', 'how often agents heartbeat', duration('--heartbeat-interval'), 1000)
  .option('--lease <duration>', "lease length: an agent that got no acknowledgement for this long (less a fifth) fences its masters; a machine silent for it plus a fifth is down and its stores fail over", duration('--lease'), 5000)
  .option('--max-switchovers <n>', 'switchovers past their preflight at once, cluster-wide; more wait in preflight', (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('a whole number of at least 1');
    return n;
  }, 4)
  .option('--max-auto-failover <n>', 'machines with masters down at once that still fail over automatically; more looks like a network problem and waits for slotctl machine failover --force', (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('a whole number (0 turns automatic failover off)');
    return n;
  }, 1)
  .option('--nice <n>', 'scheduling priority: heartbeats are acknowledged ahead of any other work on this host', (v) => {
    try {
      return parseNice(v);
    } catch (err) {
      throw new InvalidArgumentError(describeError(err));
    }
  }, DAEMON_NICE)
  .option('--tls-dir <dir>', `${TLS_FLAG_HELP.tlsDir} (one coordinator-HOST certificate)`, process.env.SLOTCTL_TLS_DIR)
  .option('--tls-ca <file>', TLS_FLAG_HELP.tlsCa, process.env.SLOTCTL_TLS_CA)
  .option('--tls-cert <file>', TLS_FLAG_HELP.tlsCert, process.env.SLOTCTL_TLS_CERT)
  .option('--tls-key <file>', TLS_FLAG_HELP.tlsKey, process.env.SLOTCTL_TLS_KEY)
  .option('--insecure', TLS_FLAG_HELP.insecure, process.env.SLOTCTL_INSECURE === '1')
  .option('--log-level <level>', 'pino log level', process.env.SLOTCTL_LOG_LEVEL ?? 'info')
  .addHelpText('after', '\nLogs are JSON lines on stdout. SIGTERM/SIGINT stop gracefully; a second signal forces the exit.');

program.parse();
const opts = program.opts<TlsFlags & { listen: string; dataDir: string; db?: string; heartbeatInterval: number; lease: number; maxSwitchovers: number; maxAutoFailover: number; logLevel: string; nice: number }>();
const log = createLogger('slot-coordinator', { level: opts.logLevel });
setOwnNice(opts.nice, log);
watchLoopLag({ log });

if (opts.lease < 2 * opts.heartbeatInterval) {
  console.error(`slot-coordinator: --lease (${opts.lease} ms) must be at least twice --heartbeat-interval (${opts.heartbeatInterval} ms)`);
  process.exit(2);
}

let certificates: ReturnType<typeof certificatesFromFlags>;
try {
  certificates = certificatesFromFlags(opts, { roles: ['coordinator'] }, {
    onReload: (id, notAfter) => log.info({ identity: id, notAfter }, 'renewed certificate taken for new connections'),
    onError: (err) => log.error({ err: describeError(err) }, 'renewed certificate files refused; the old ones stay in use'),
  });
} catch (err) {
  console.error(`slot-coordinator: cannot start: ${describeError(err)}`);
  process.exit(1);
}

const coordinator = new Coordinator(
  { certificates: certificates?.files, listen: opts.listen, databasePath: opts.db ?? join(opts.dataDir, 'coordinator.db'), heartbeatIntervalMs: opts.heartbeatInterval, leaseMs: opts.lease, maxSwitchovers: opts.maxSwitchovers, maxAutoFailover: opts.maxAutoFailover },
  log,
);

let signals = 0;
const shutdown = (signal: string) => {
  signals++;
  if (signals > 1) {
    log.warn({ signal }, 'second signal: exiting now');
    process.exit(1);
  }
  log.info({ signal }, 'stopping');
  coordinator.stop().then(
    () => process.exit(0),
    (err: unknown) => {
      log.error({ err }, 'error while stopping');
      process.exit(1);
    },
  );
};
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));

try {
  await coordinator.start();
} catch (err) {
  const message = describeError(err);
  log.fatal({ err: isUserError(err) ? undefined : err }, `cannot start: ${message}`);
  console.error(`slot-coordinator: cannot start: ${message}`);
  process.exit(1);
}
