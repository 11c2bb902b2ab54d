export * from './server.js';
export * from './routes.js';
