// The Admin client used by slotctl: promise-returning calls with a deadline, failures turned into named errors.
import * as grpc from '@grpc/grpc-js';
import {
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

type AnyUnary = (request: unknown, options: grpc.CallOptions, callback: (err: grpc.ServiceError | null, value?: unknown) => void) => unknown;

export class Admin {
  private readonly client: AdminClient;

  /** `certificates`: this operator's (mutual TLS, the server must be a coordinator); none: in the clear (--insecure). */
  constructor(readonly target: string, private readonly timeoutMs: number, certificates?: CertificateFiles) {
    const { Admin: AdminCtor } = loadContract().slotctl.v1;
    // A status of a large cluster is over gRPC's default 4 MB (see MAX_MESSAGE_BYTES).
    this.client = new AdminCtor(target, channelCredentials(certificates, expectIdentity('coordinator')), { ...TLS_CHANNEL_OPTIONS, 'grpc.max_receive_message_length': MAX_MESSAGE_BYTES });
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
  drainMachine = (request: DrainRequest) => this.unary<DrainReply__Output>('DrainMachine', request);
  undrainMachine = (machine: string) => this.unary<UndrainReply__Output>('UndrainMachine', { machine });
  listOperations = (request: ListOperationsRequest) => this.unary<ListOperationsReply__Output>('ListOperations', request);
  getOperation = (id: string) => this.unary<OperationReply__Output>('GetOperation', { id });
  cancelOperation = (id: string) => this.unary<OperationReply__Output>('CancelOperation', { id });
  failoverMachine = (request: { machine: string; force: boolean; dryRun: boolean }) => this.unary<FailoverMachineReply__Output>('FailoverMachine', request);
  listAtRisk = (request: { store: string; all: boolean }) => this.unary<ListAtRiskReply__Output>('ListAtRisk', request);
  recover = (request: { store: string; machine: string; dryRun: boolean }) => this.unary<RecoverReply__Output>('Recover', request);
  plan = (request: { kind: string; lose?: string[]; count?: number; prefix?: string; machineJson?: string; apply?: boolean; parallel?: number }) => this.unary<PlanReply__Output>('Plan', request);
  retireMachine = (request: { machine: string; dryRun: boolean }) => this.unary<RetireMachineReply__Output>('RetireMachine', request);
  cleanupStatus = (request: { machine: string }) => this.unary<{ json: string }>('CleanupStatus', request);
  runCleanup = (request: { slot: string; machine: string }) => this.unary<{ slots: string[]; problems: string[] }>('RunCleanup', request);
  diskStatus = (request: { machine: string }) => this.unary<{ json: string }>('DiskStatus', request);

  private unary<Res>(method: keyof AdminClient & string, request: unknown): Promise<Res> {
    const fn = (this.client[method] as unknown as AnyUnary).bind(this.client);
    return new Promise((resolve, reject) => {
      fn(request, { deadline: Date.now() + this.timeoutMs }, (err, value) => {
        if (err) reject(fromGrpcError(err, this.target));
        else resolve(value as Res);
      });
    });
  }

  close(): void {
    this.client.close();
  }
}
