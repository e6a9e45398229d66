export * from '../../../test-support/tiny-gan.js';
