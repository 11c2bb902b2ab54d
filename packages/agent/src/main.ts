// slot-agent: one per mail host. This file turns flags into AgentOptions and handles signals; agent.ts builds the
// agent. Exit codes: 0 clean stop, 1 refused to start (message says why), 2 usage.
import { Command, InvalidArgumentError, Option } from 'commander';
import { SLOTCTL_VERSION, DAEMON_NICE, parseListen, TLS_FLAG_HELP, type TlsFlags, certificatesFromFlags, configFileHelp, configureOrExit, nameProblem, parseCoordinatorList, parseNice, setOwnNice, watchLoopLag, ConfigError, assertName, createLogger, describeError, isUserError, parseDuration, parseSize } from '@slotctl/shared';
import { Agent } from './agent.js';
import { readSecretFile } from './secret-file.js';
import { AgentSystemd, takeSystemdEnv } from './systemd.js';
import { DEFAULT_ARP_PROBE_MS } from './vip/probe.js';

/** A graceful stop that takes longer than this ends in a forced exit. */
const STOP_TIMEOUT_MS = 30_000;

function niceOption(value: string): number {
  try {
    return parseNice(value);
  } catch (err) {
    throw new InvalidArgumentError(describeError(err));
  }
}

function coordinatorList(value: string): string[] {
  try {
    return parseCoordinatorList(value);
  } catch (err) {
    throw new InvalidArgumentError(describeError(err));
  }
}

/** HOST:PORT, or "off" (no HTTP endpoints): checked here so that a typo is a usage error, not a failed start. */
function httpListen(value: string): string {
  if (value === 'off') return value;
  try {
    parseListen(value, '--http-listen');
    return value;
  } catch {
    throw new InvalidArgumentError(`"${value}" is not HOST:PORT (for example 127.0.0.1:7481, [::1]:7481), nor off`);
  }
}

function machineName(value: string): string {
  const problem = nameProblem(value);
  if (problem) throw new InvalidArgumentError(problem);
  return value;
}

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new InvalidArgumentError(`"${value}" is not a TCP port`);
  return n;
}

/** How the options are written in --config FILE (the rest is each long flag in snake_case). */
const CONFIG_KEYS = { keys: { coordinator: 'coordinators' }, lists: ['coordinator'] };

const program: Command = new Command('slot-agent')
  .description("The slotctl agent: runs this machine's Cyrus slots in the roles the coordinator's desired state gives them, and reports what it observes.")
  .version(SLOTCTL_VERSION)
  .addOption(new Option('--config <file>', 'YAML file with any of the options below (e.g. /etc/slotctl/agent.yaml); no file is read unless named').env('SLOTCTL_CONFIG'))
  .addOption(new Option('--machine <name>', "this machine's name in the cluster").env('SLOTCTL_MACHINE').argParser(machineName))
  .addOption(
    new Option('--coordinator <host:port,...>', 'coordinator address, or a comma-separated list of the coordinators of which one leads (etcd backend): the agent keeps its session with the leader, goes at once to the leader a follower names, and otherwise tries the next address')
      .env('SLOTCTL_COORDINATOR')
      .argParser(coordinatorList)
      .default(['127.0.0.1:7400'], '127.0.0.1:7400'),
  )
  .addOption(new Option('--state-dir <dir>', 'where the agent keeps the epochs it applied').env('SLOTCTL_STATE_DIR').default('/var/lib/slotctl-agent'))
  .addOption(new Option('--auth <mode>', 'password check of the slots: sasldb (production) or test (any password; demo and tests only)').choices(['sasldb', 'test']).default('sasldb'))
  .addOption(new Option('--sync-user <name>', 'Cyrus admin used by replication').default('admin'))
  .addOption(new Option('--sync-password-file <file>', 'file holding the replication password (required with --auth sasldb)').env('SLOTCTL_SYNC_PASSWORD_FILE'))
  .addOption(new Option('--imap-port <port>', 'IMAP port on slot and service IPs (same on every agent)').argParser(port).default(1143))
  .addOption(new Option('--lmtp-port <port>', 'LMTP port on service IPs (same on every agent)').argParser(port).default(2003))
  .addOption(new Option('--sync-port <port>', 'replication port on replica slot IPs (same on every agent)').argParser(port).default(2005))
  .addOption(new Option('--peer-port <port>', "agent-to-agent port on each machine's address: failsafe confirmations (same on every agent)").argParser(port).default(7401))
  .addOption(new Option('--vip-driver <driver>', 'how slot and service IPs are taken: loopback (127.0.0.0/8, no ip calls) or ip (ip addr + arping)').choices(['loopback', 'ip']).default('loopback'))
  .addOption(new Option('--vip-interface <iface>', 'interface for --vip-driver ip').default('eth0'))
  .addOption(new Option('--arp-probe <duration>', 'how long arping -D listens for another owner of an address before it is taken, counted from when arping has started (a real owner on the link answered within 6 ms on a loaded host: BENCHMARKS.md; raise it on virtual machines whose CPUs are stolen)').argParser((v) => parseDuration(v, '--arp-probe')).default(DEFAULT_ARP_PROBE_MS, `${DEFAULT_ARP_PROBE_MS}ms`))
  .addOption(new Option('--arp-retransmit <duration>', "with --vip-driver ip: how often the kernel repeats an unanswered ARP request on the interface (its default, 1 s, made renewals wait up to a second more after a link flap); 0 leaves the kernel's setting").argParser((v) => parseDuration(v, '--arp-retransmit')).default(250, '250ms'))
  .addOption(new Option('--syslog-dir <dir>', 'where Cyrus lines are filed per slot (by slot-syslogd when nothing owns /dev/log, else by rsyslog with deploy/rsyslog/30-slotctl.conf.template)').default('/run/slotctl/syslog'))
  .addOption(new Option('--syslog-socket <path>', 'the syslog socket Cyrus writes to').default('/dev/log'))
  .addOption(new Option('--stall-after <duration>', 'a backlog that does not move this long is reported stalled (counted from the replica\'s return when it refused connections)').argParser((v) => parseDuration(v, '--stall-after')).default(30_000, '30s'))
  .addOption(new Option('--ready-timeout <duration>', 'a started cyrmaster that does not greet on its slot IP this long is killed and started again (each further try waits one more timeout)').argParser((v) => parseDuration(v, '--ready-timeout')).default(15_000, '15s'))
  .addOption(new Option('--disk-report-interval <duration>', "how often each slot's partitions are measured (free space, bytes waiting for cleanup)").argParser((v) => parseDuration(v, '--disk-report-interval')).default(300_000, '5m'))
  .addOption(new Option('--seed-rate-limit <size>', "a full copy this machine's master sends to a new replica (re-replication, replica move) averages at most this many bytes a second, e.g. 50MB (the pause comes between batches of users: Cyrus's sync_client has no limit of its own); 0 for none").argParser((v) => parseSize(v, '--seed-rate-limit')).default(0, '0 (none)'))
  .addOption(new Option('--reconcile-interval <duration>', "how often the slots' addresses on the interface are compared with what they must be (drift is repaired and raised as an event)").argParser((v) => parseDuration(v, '--reconcile-interval')).default(500, '500ms'))
  .addOption(
    new Option('--http-listen <host:port>', 'HTTP endpoints, served with this machine\'s certificate (mutual TLS; callers need a reader certificate): /metrics (Prometheus), /livez, /readyz (200 while connected to the leading coordinator and holding a lease; 503 with the reason); "off" for none')
      .env('SLOTCTL_HTTP_LISTEN')
      .argParser(httpListen)
      .default('127.0.0.1:7481'),
  )
  .option('--stop-slots-on-exit', 'stop every cyrmaster when the agent stops (default: leave them serving; a restarted agent re-adopts them)')
  .addOption(new Option('--nice <n>', 'scheduling priority of the agent and its fence (Cyrus runs at 0): leases must not wait behind the mail workload').argParser(niceOption).default(DAEMON_NICE))
  .addOption(new Option('--tls-dir <dir>', `${TLS_FLAG_HELP.tlsDir} (agent-MACHINE)`).env('SLOTCTL_TLS_DIR'))
  .addOption(new Option('--tls-ca <file>', TLS_FLAG_HELP.tlsCa).env('SLOTCTL_TLS_CA'))
  .addOption(new Option('--tls-cert <file>', TLS_FLAG_HELP.tlsCert).env('SLOTCTL_TLS_CERT'))
  .addOption(new Option('--tls-key <file>', TLS_FLAG_HELP.tlsKey).env('SLOTCTL_TLS_KEY'))
  // SLOTCTL_INSECURE=1 only, applied by configureOrExit (commander's .env() would take any value, even 0, as yes)
  .option('--insecure', `${TLS_FLAG_HELP.insecure}; refused with --vip-driver ip (env: SLOTCTL_INSECURE=1)`, false)
  .addOption(new Option('--log-level <level>', 'pino log level').env('SLOTCTL_LOG_LEVEL').default('info'))
  .addHelpText('after', (): string => `\n${configFileHelp(program, CONFIG_KEYS)}\n\nLogs are JSON lines on stdout. SIGTERM/SIGINT stop gracefully; a second signal forces the exit.`);

program.parse();
// flag > environment > file > default (exits 2 naming FILE:LINE on a bad file)
await configureOrExit('slot-agent', program, {
  ...CONFIG_KEYS,
  file: program.opts<{ config?: string }>().config,
  required: { machine: "this machine's name in the cluster file" },
  strictBooleanEnv: { insecure: 'SLOTCTL_INSECURE' },
});
const opts = program.opts<TlsFlags & {
  machine: string;
  coordinator: string[];
  stateDir: string;
  auth: 'sasldb' | 'test';
  syncUser: string;
  syncPasswordFile?: string;
  imapPort: number;
  lmtpPort: number;
  syncPort: number;
  peerPort: number;
  syslogDir: string;
  syslogSocket: string;
  stopSlotsOnExit?: boolean;
  stallAfter: number;
  readyTimeout: number;
  diskReportInterval: number;
  seedRateLimit: number;
  reconcileInterval: number;
  httpListen: string;
  vipDriver: 'loopback' | 'ip';
  vipInterface: string;
  arpProbe: number;
  arpRetransmit: number;
  logLevel: string;
  nice: number;
}>();
const log = createLogger('slot-agent', { level: opts.logLevel }).child({ machine: opts.machine });
// A failed side task (a report, a look at a directory) is a bug to fix, not a reason to stop supervising every slot
// of the machine: log it with its stack and keep running. (Seen: a sync log removed between stat and open.)
process.on('unhandledRejection', (err) => log.error({ err: err instanceof Error ? err.stack : String(err) }, 'unhandled promise rejection (a bug); the agent keeps running'));

function syncPassword(): string {
  if (!opts.syncPasswordFile) {
    if (opts.auth === 'test') return 'test-only';
    throw new ConfigError('--auth sasldb needs --sync-password-file', { hint: "write the replication password to a file readable by root only (printf '%s\\n' PASSWORD > FILE; chmod 600 FILE) and name it" });
  }
  // 0600, owned by the agent's user, one line of plain characters: else SecretFileError (secret-file.ts)
  return readSecretFile(opts.syncPasswordFile, '--sync-password-file');
}

async function main(): Promise<void> {
  assertName(opts.machine, '--machine');
  if (opts.insecure && opts.vipDriver === 'ip') {
    throw new ConfigError('--insecure is refused with --vip-driver ip: a real host\'s links must be mutual TLS', { hint: 'issue this machine a certificate: slotctl pki issue agent MACHINE --dir PKI-DIR --out DIR, and give --tls-dir DIR' });
  }
  const certificates = certificatesFromFlags(opts, { role: 'agent', name: opts.machine }, {
    onReload: (identity, notAfter) => log.info({ identity, notAfter }, 'renewed certificate taken for new connections'),
    onError: (err) => log.error({ err: err.message }, 'renewed certificate files refused; the old ones stay in use'),
  });
  if (!certificates) log.warn('running without TLS (--insecure): anyone who reaches the peer port is believed');
  setOwnNice(opts.nice, log);
  watchLoopLag({ log });
  const agent = new Agent(
    {
      machine: opts.machine,
      coordinators: opts.coordinator,
      stateDir: opts.stateDir,
      auth: { mode: opts.auth, syncUser: opts.syncUser, syncPassword: syncPassword() },
      ports: { imap: opts.imapPort, lmtp: opts.lmtpPort, sync: opts.syncPort, peer: opts.peerPort },
      vip: { driver: opts.vipDriver, iface: opts.vipInterface, arpProbeMs: opts.arpProbe, arpRetransmitMs: opts.arpRetransmit },
      syslog: { dir: opts.syslogDir, socket: opts.syslogSocket },
      stopSlotsOnExit: !!opts.stopSlotsOnExit,
      stallAfterMs: opts.stallAfter,
      readyTimeoutMs: opts.readyTimeout,
      diskReportIntervalMs: opts.diskReportInterval,
      seedRateLimit: opts.seedRateLimit,
      reconcileIntervalMs: opts.reconcileInterval,
      logLevel: opts.logLevel,
      certificates: certificates?.files,
      httpListen: opts.httpListen === 'off' ? undefined : opts.httpListen,
    },
    log,
  );
  // Type=notify: READY, STATUS, watchdog keep-alives, the stop at shutdown; systemd's variables kept from the children
  const systemd = new AgentSystemd(log, takeSystemdEnv());
  systemd.attach(agent);
  await agent.start();
  systemd.ready(agent);
  // from here on (a signal during the start ends the process at once, as it did before the agent had any handler)
  let signals = 0;
  const shutdown = (signal: string) => {
    if (++signals > 1) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    log.info({ signal, stopSlots: !!opts.stopSlotsOnExit }, 'stopping');
    const onTimeout = () => {
      log.error('graceful stop took too long; exiting');
      process.exit(1);
    };
    systemd.stop(agent, { stopSlotsOnExit: !!opts.stopSlotsOnExit, stateDir: opts.stateDir, timeoutMs: STOP_TIMEOUT_MS, onTimeout }).then(
      () => {
        log.info('agent stopped');
        process.exit(0);
      },
      (err: unknown) => {
        // the fence (still running unless the slots were stopped) guards whatever is left; a restarted agent re-adopts
        log.error({ err: err instanceof Error ? err.stack : String(err) }, 'the stop failed (a bug); exiting');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  const message = describeError(err);
  log.fatal({ err: isUserError(err) ? undefined : err }, `cannot start: ${message}`);
  console.error(`slot-agent: cannot start: ${message}`);
  process.exit(1);
});
