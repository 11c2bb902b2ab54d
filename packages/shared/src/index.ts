export * from './base.js';
export * from './proto.js';
export * from './grpc-errors.js';
export type { CleanupStatusRow, DiskStatusRow } from './cleanup-status.js';
export * from './tls/credentials.js';
export * from './tls/options.js';
export * from './tls/paths.js';
export * from './throttle.js';
export * from './leader.js';
