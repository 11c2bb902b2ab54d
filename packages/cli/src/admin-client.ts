// The Admin client used by slotctl: promise-returning calls with a deadline, failures turned into named errors.
// --coordinator may list several coordinators of which one leads: a call a follower refuses is made again at the
// leader it names (or the next address), one that cannot connect at the next address, each address at most once
// per call; the address that answered is where the next call starts.
import * as grpc from '@grpc/grpc-js';
import {
  ConfigError,
  UnavailableError,
  describeError,
  namedErrorCode,
  nextForCall,
  notLeaderOf,
  parseCoordinatorList,
  type TryOutcome,
  type FailoverMachineReply__Output,
  type ListAtRiskReply__Output,
  type RecoverReply__Output,
  PlanReply__Output,
  RetireMachineReply__Output,
  fromGrpcError,
  loadContract,
  type AdminClient,
  type ApplyClusterReply__Output,
  type ApplyClusterRequest,
  type ExportClusterRequest,
  type ExportClusterReply__Output,
  type ListEventsReply__Output,
  type ListEventsRequest,
  type ListMachinesReply__Output,
  type ListStoresReply__Output,
  type ListSlotsRequest,
  type ListSlotsReply__Output,
  type SetSlotRunRequest,
  type SetSlotRunReply__Output,
  type ReplaySlotReply__Output,
  type StatusReply__Output,
  type SwitchoverRequest,
  type SwitchoverReply__Output,
  type MoveReplicaRequest,
  type MoveReplicaReply__Output,
  type DrainRequest,
  type DrainReply__Output,
  type UndrainReply__Output,
  type ListOperationsRequest,
  type ListOperationsReply__Output,
  type OperationReply__Output,
  MAX_MESSAGE_BYTES,
  type CertificateFiles,
  TLS_CHANNEL_OPTIONS,
  channelCredentials,
  expectIdentity,
} from '@slotctl/shared';

export const DEFAULT_COORDINATOR = '127.0.0.1:7400';

type AnyUnary = (request: unknown, options: grpc.CallOptions, callback: (err: grpc.ServiceError | null, value?: unknown) => void) => grpc.ClientUnaryCall;

/**
 * With several addresses, a call whose channel has no connection after this long (at most half the call's timeout)
 * goes to the next address: a host that is gone leaves the SYN unanswered for minutes, and nothing was sent to it.
 */
const CONNECT_WAIT_MS = 2000;

/**
 * The call never left: no connection to that address (grpc-js's words when the channel cannot connect or resolve).
 * Only such a call is made again elsewhere: one that was dropped or ran out of time may have been acted on (a
 * switchover asked twice), and a status with a slotctl error is the coordinator's own answer.
 */
function neverSent(err: grpc.ServiceError): boolean {
  return err.code === grpc.status.UNAVAILABLE && !namedErrorCode(err) && /^No connection established|Name resolution failed/.test(err.details ?? '');
}

type Answer<Res> = { ok: true; value: Res } | { ok: false; err: grpc.ServiceError } | { ok: false; noConnection: string };

export class Admin {
  /** The addresses of --coordinator, in order. */
  readonly coordinators: readonly string[];
  private readonly clients = new Map<string, AdminClient>();
  /** The address that answered last (the leader, once found): the next call starts there. */
  private preferred = 0;

  /**
   * `target`: host:port, or several separated by commas. `certificates`: this operator's (mutual TLS, the server
   * must be a coordinator); none: in the clear (--insecure).
   */
  constructor(readonly target: string, private readonly timeoutMs: number, private readonly certificates?: CertificateFiles) {
    try {
      this.coordinators = parseCoordinatorList(target);
    } catch (err) {
      throw new ConfigError(`--coordinator "${target}": ${describeError(err)}`, { hint: 'give host:port, or several separated by commas' });
    }
  }

  /** The address that answered the last call (before any: the first of the list). */
  get current(): string {
    return this.coordinators[this.preferred]!;
  }

  private client(address: string): AdminClient {
    let client = this.clients.get(address);
    if (!client) {
      const { Admin: AdminCtor } = loadContract().slotctl.v1;
      // A status of a large cluster is over gRPC's default 4 MB (see MAX_MESSAGE_BYTES).
      client = new AdminCtor(address, channelCredentials(this.certificates, expectIdentity('coordinator')), { ...TLS_CHANNEL_OPTIONS, 'grpc.max_receive_message_length': MAX_MESSAGE_BYTES });
      this.clients.set(address, client);
    }
    return client;
  }

  status = () => this.unary<StatusReply__Output>('Status', {});
  listMachines = () => this.unary<ListMachinesReply__Output>('ListMachines', {});
  listStores = () => this.unary<ListStoresReply__Output>('ListStores', {});
  listEvents = (request: ListEventsRequest) => this.unary<ListEventsReply__Output>('ListEvents', request);
  listSlots = (request: ListSlotsRequest) => this.unary<ListSlotsReply__Output>('ListSlots', request);
  setSlotRun = (request: SetSlotRunRequest) => this.unary<SetSlotRunReply__Output>('SetSlotRun', request);
  replaySlot = (slot: string) => this.unary<ReplaySlotReply__Output>('ReplaySlot', { slot });
  applyCluster = (request: ApplyClusterRequest) => this.unary<ApplyClusterReply__Output>('ApplyCluster', request);
  exportCluster = (request: ExportClusterRequest) => this.unary<ExportClusterReply__Output>('ExportCluster', request);
  switchover = (request: SwitchoverRequest) => this.unary<SwitchoverReply__Output>('Switchover', request);
  moveReplica = (request: MoveReplicaRequest) => this.unary<MoveReplicaReply__Output>('MoveReplica', request);
  drainMachine = (request: DrainRequest) => this.unary<DrainReply__Output>('DrainMachine', request);
  undrainMachine = (machine: string) => this.unary<UndrainReply__Output>('UndrainMachine', { machine });
  listOperations = (request: ListOperationsRequest) => this.unary<ListOperationsReply__Output>('ListOperations', request);
  getOperation = (id: string) => this.unary<OperationReply__Output>('GetOperation', { id });
  cancelOperation = (id: string) => this.unary<OperationReply__Output>('CancelOperation', { id });
  failoverMachine = (request: { machine: string; force: boolean; dryRun: boolean }) => this.unary<FailoverMachineReply__Output>('FailoverMachine', request);
  listAtRisk = (request: { store: string; all: boolean }) => this.unary<ListAtRiskReply__Output>('ListAtRisk', request);
  recover = (request: { store: string; machine: string; dryRun: boolean }) => this.unary<RecoverReply__Output>('Recover', request);
  plan = (request: { kind: string; lose?: string[]; count?: number; prefix?: string; machineJson?: string; apply?: boolean; parallel?: number; machine?: string }) => this.unary<PlanReply__Output>('Plan', request);
  retireMachine = (request: { machine: string; dryRun: boolean }) => this.unary<RetireMachineReply__Output>('RetireMachine', request);
  cleanupStatus = (request: { machine: string }) => this.unary<{ json: string }>('CleanupStatus', request);
  runCleanup = (request: { slot: string; machine: string }) => this.unary<{ slots: string[]; problems: string[] }>('RunCleanup', request);
  diskStatus = (request: { machine: string }) => this.unary<{ json: string }>('DiskStatus', request);

  private async unary<Res>(method: keyof AdminClient & string, request: unknown): Promise<Res> {
    const list = this.coordinators;
    const tried = new Set<number>();
    const said: string[] = [];
    let at: number | undefined = this.preferred;
    while (at !== undefined) {
      tried.add(at);
      const address = list[at]!;
      const answer = await this.once<Res>(address, method, request);
      if (answer.ok) {
        this.preferred = at;
        return answer.value;
      }
      let outcome: TryOutcome | undefined;
      if ('noConnection' in answer) outcome = { kind: 'failed' };
      else {
        const follower = notLeaderOf(answer.err);
        if (follower) outcome = { kind: 'not-leader', leader: follower.leader };
        else if (neverSent(answer.err)) outcome = { kind: 'failed' };
        // one address: the answer as it always was
        if (!outcome || list.length === 1) throw fromGrpcError(answer.err, address);
      }
      said.push(`${address} (${'noConnection' in answer ? answer.noConnection : answer.err.details})`);
      at = nextForCall(list, tried, at, outcome);
    }
    throw new UnavailableError(`cannot reach the leading coordinator: tried ${said.join(', ')}`, {
      hint: 'if an election is under way, try again in a few seconds; else are the slot-coordinators running there? Set the addresses with --coordinator or SLOTCTL_COORDINATOR',
    });
  }

  private once<Res>(address: string, method: keyof AdminClient & string, request: unknown): Promise<Answer<Res>> {
    const client = this.client(address);
    const fn = (client[method] as unknown as AnyUnary).bind(client);
    return new Promise((resolve) => {
      let stuck: string | undefined;
      let timer: NodeJS.Timeout | undefined;
      const call = fn(request, { deadline: Date.now() + this.timeoutMs }, (err, value) => {
        clearTimeout(timer);
        if (stuck) resolve({ ok: false, noConnection: stuck });
        else if (err) resolve({ ok: false, err });
        else resolve({ ok: true, value: value as Res });
      });
      if (this.coordinators.length < 2) return;
      const waitMs = Math.min(CONNECT_WAIT_MS, this.timeoutMs / 2);
      timer = setTimeout(() => {
        if (client.getChannel().getConnectivityState(false) === grpc.connectivityState.READY) return;
        stuck = `no connection within ${waitMs / 1000} s`;
        call.cancel();
      }, waitMs);
    });
  }

  close(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }
}
