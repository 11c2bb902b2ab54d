export * from './base.js';
export * from './proto.js';
export * from './grpc-errors.js';
