/** The graph building blocks, in one import. */
export * from './basic-ops.js';
export * from './rope.js';
export * from './attention.js';
export * from './fused-ops.js';
