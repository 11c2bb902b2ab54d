export * from './proto.js';
export * from './errors.js';
export * from './log.js';
export * from './duration.js';
export * from './validate.js';
export * from './atomic-file.js';
export * from './version.js';
export * from './grpc-errors.js';
