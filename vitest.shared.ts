import { defineConfig } from 'vitest/config';

/** Tests import sibling packages from source through the `@gantry/source` export condition. */
export function gantryVitest(testTimeout = 60_000) {
  return defineConfig({
    resolve: { conditions: ['@gantry/source', 'module', 'node', 'import', 'default'] },
    ssr: { resolve: { conditions: ['@gantry/source', 'module', 'node', 'import', 'default'] } },
    test: {
      environment: 'node',
      testTimeout,
      hookTimeout: testTimeout,
      pool: 'forks',
      poolOptions: { forks: { singleFork: true } },
      include: ['test/**/*.test.ts', 'src/**/*.test.ts'],
    },
  });
}
