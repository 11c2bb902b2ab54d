// Pure: a slot's imapd.conf and cyrus.conf for its role. Traps measured in shared/cyrus/RECIPE.md are encoded here:
// every cmd= carries -C (children do not inherit it), sync_try_imap: 0, only a master autocreates, a replica has no
// sync_log, per-slot sockets and syslog_prefix.
import type { AppliedSlot } from '../state/apply-plan.js';
import { slotLayout } from './layout.js';

export interface Ports {
  imap: number;
  lmtp: number;
  sync: number;
}

export interface AuthConfig {
  /** 'test' accepts any password (demo and tests only); 'sasldb' checks passwords against the slot's sasldb. */
  mode: 'test' | 'sasldb';
  syncUser: string;
  syncPassword: string;
}

export interface RenderInput {
  slot: string;
  desired: AppliedSlot;
  ports: Ports;
  auth: AuthConfig;
  /** A master about to stop: no listener on the service IP, so deliveries in flight finish and new ones go elsewhere. */
  quiescing?: boolean;
  /** A new master receiving a returned old master's unreplicated mailboxes: a temporary sync_server on its slot IP. */
  recoverListen?: boolean;
}

export interface RenderedConfig {
  imapdConf: string;
  cyrusConf: string;
}

const HEADER = '# Written by slot-agent; changes are overwritten. Role and epoch:';

export const sasldbPath = (confDir: string) => `${confDir}/sasldb2`;
export const saslRealm = (slot: string) => `slot-${slot}`;

/** The sync log channel (and its rolling sync_client's cyrus.conf entry) of a replica being moved. */
export const MOVE_CHANNEL = 'move';
const MOVE_DAEMON = 'syncmove';

/** The cyrus.conf line of the recovery listener: added and removed on a running master with SIGHUP alone. */
export const RECOVER_SERVICE = 'syncrecover';

export function renderSlotConfig({ slot, desired, ports, auth, quiescing = false, recoverListen = false }: RenderInput): RenderedConfig {
  const layout = slotLayout(desired.dataPath, desired.metaPath);
  const master = desired.role === 'MASTER';
  const conf = layout.imapdConf;
  const imapd = [
    `${HEADER} ${desired.role.toLowerCase()} ${desired.epoch}`,
    `configdirectory: ${layout.confDir}`,
    `partition-default: ${layout.dataPartition}`,
    `metapartition-default: ${layout.metaPartition}`,
    'metapartition_files: header index cache expunge squat annotations lock dav archivecache',
    'defaultpartition: default',
    `admins: ${auth.syncUser}`,
    ...(auth.mode === 'test'
      ? ['sasl_pwcheck_method: alwaystrue', 'allowplaintext: yes']
      : [
          'sasl_pwcheck_method: auxprop',
          'sasl_auxprop_plugin: sasldb',
          `sasl_sasldb_path: ${sasldbPath(layout.confDir)}`,
          // the SASL realm: the slot's sasldb holds its users as USER@slot-NAME
          `servername: ${saslRealm(slot)}`,
          'allowplaintext: yes',
        ]),
    'sasl_mech_list: PLAIN LOGIN',
    `idlesocket: ${layout.confDir}/socket/idle`,
    `lmtpsocket: ${layout.confDir}/socket/lmtp`,
    `notifysocket: ${layout.confDir}/socket/notify`,
    `master_pid_file: ${layout.pidFile}`,
    `syslog_prefix: slot-${slot}`,
    'delete_mode: delayed',
    'expunge_mode: delayed',
    'unixhierarchysep: yes',
    'lmtp_downcase_rcpt: 1',
  ];
  if (master) {
    imapd.push(
      // Only a master autocreates (on delivery and login): a login on a replica must not create mailboxes.
      'autocreate_post: 1',
      'autocreate_quota: 0',
      'sync_log: 1',
      `sync_host: ${desired.peerIp}`,
      `sync_port: ${ports.sync}`,
      'sync_try_imap: 0',
      `sync_authname: ${auth.syncUser}`,
      `sync_password: ${auth.syncPassword}`,
      'sync_repeat_interval: 1',
    );
    // a replica being moved: every change is logged twice, to the default channel (the store's replica) and to the
    // `move` channel, which its own rolling sync_client sends to the new replica (measured: ../shared/cyrus)
    if (desired.moveTargetIp) imapd.push(`sync_log_channels: "" ${MOVE_CHANNEL}`, `${MOVE_CHANNEL}_sync_host: ${desired.moveTargetIp}`);
  }
  const listen = (ip: string, port: number) => (ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`);
  const services = [`  imap cmd="imapd -C ${conf}" listen="${listen(desired.slotIp, ports.imap)}" prefork=0`];
  if (master && !quiescing) {
    services.push(
      `  imapsvc cmd="imapd -C ${conf}" listen="${listen(desired.serviceIp, ports.imap)}" prefork=0`,
      `  lmtp cmd="lmtpd -C ${conf} -a" listen="${listen(desired.serviceIp, ports.lmtp)}" prefork=0`,
    );
  } else if (!master) {
    services.push(`  syncserver cmd="sync_server -C ${conf}" listen="${listen(desired.slotIp, ports.sync)}" prefork=0`);
  }
  if (master && recoverListen) services.push(`  ${RECOVER_SERVICE} cmd="sync_server -C ${conf}" listen="${listen(desired.slotIp, ports.sync)}" prefork=0`);
  const cyrus = [
    `${HEADER} ${desired.role.toLowerCase()} ${desired.epoch}`,
    'START {',
    `  recover cmd="ctl_cyrusdb -C ${conf} -r"`,
    '}',
    'SERVICES {',
    ...services,
    '}',
    'EVENTS {',
    `  checkpoint cmd="ctl_cyrusdb -C ${conf} -c" period=30`,
    '}',
  ];
  if (master) cyrus.push('DAEMON {', `  syncclient cmd="sync_client -C ${conf} -r"`, ...(desired.moveTargetIp ? [`  ${MOVE_DAEMON} cmd="sync_client -C ${conf} -r -n ${MOVE_CHANNEL}"`] : []), '}');
  return { imapdConf: `${imapd.join('\n')}\n`, cyrusConf: `${cyrus.join('\n')}\n` };
}

/**
 * The config a returning old master pushes its mailboxes with: its own (replica) imapd.conf plus what sync_client
 * needs to reach the new master. Measured: without sync_port it looks up a "csync" service that does not exist;
 * without sync_try_imap: 0 it speaks IMAP first and retries for ever.
 */
export function renderRecoverConfig(imapdConf: string, targetIp: string, ports: Ports, auth: AuthConfig): string {
  const own = imapdConf.split('\n').filter((l) => l && !/^sync_/.test(l));
  return `${[...own, `sync_host: ${targetIp}`, `sync_port: ${ports.sync}`, 'sync_try_imap: 0', `sync_authname: ${auth.syncUser}`, `sync_password: ${auth.syncPassword}`].join('\n')}\n`;
}

/**
 * Two configs of a master that differ only in where it replicates to (sync_* settings, the move channel and its
 * sync_client): cyrmaster can take them with SIGHUP, its services unchanged.
 */
export function differsOnlyInReplication(a: RenderedConfig, b: RenderedConfig): boolean {
  const imapd = (t: string) => t.split('\n').filter((l) => !l.startsWith(HEADER) && !/^(sync_|move_sync_)/.test(l)).join('\n');
  const cyrus = (t: string) => t.split('\n').filter((l) => !l.startsWith(HEADER) && !/^\s*(syncclient|syncmove) /.test(l)).join('\n');
  return (a.imapdConf !== b.imapdConf || a.cyrusConf !== b.cyrusConf) && imapd(a.imapdConf) === imapd(b.imapdConf) && cyrus(a.cyrusConf) === cyrus(b.cyrusConf);
}

/** Only the header line (role and epoch) differs: an epoch moved without a change of role or of anything Cyrus reads. */
export function differsOnlyInHeader(a: string, b: string): boolean {
  const strip = (t: string) => t.split('\n').filter((l) => !l.startsWith(HEADER)).join('\n');
  return a !== b && strip(a) === strip(b);
}

/** True when two cyrus.conf texts differ only in the recovery listener line. */
export function differsOnlyInRecoverListener(a: string, b: string): boolean {
  const strip = (t: string) => t.split('\n').filter((l) => !l.trimStart().startsWith(`${RECOVER_SERVICE} `)).join('\n');
  return a !== b && strip(a) === strip(b);
}
