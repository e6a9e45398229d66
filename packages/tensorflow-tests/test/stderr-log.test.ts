import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { nativeTensorflowInstalled } from '@gantry/engine';

const required = process.env.GANTRY_REQUIRE_NATIVE === '1';
const installed = nativeTensorflowInstalled();
if (!installed && required) throw new Error('GANTRY_REQUIRE_NATIVE=1 but no native TensorFlow is set up');

const fixture = fileURLToPath(new URL('./fixtures/load-tensorflow.ts', import.meta.url));

/** Loads the backend in a child process with TF_CPP_MIN_LOG_LEVEL as given (undefined: unset, Gantry's default 2). */
function load(level: string | undefined): { stdout: string; stderr: string } {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.TF_CPP_MIN_LOG_LEVEL;
  if (level != null) env.TF_CPP_MIN_LOG_LEVEL = level;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--conditions=@gantry/source', fixture], {
    encoding: 'utf8',
    env,
    cwd: fileURLToPath(new URL('..', import.meta.url)),
  });
  expect(r.status, r.stderr).toBe(0);
  return { stdout: r.stdout, stderr: r.stderr };
}

describe.skipIf(!installed)('TensorFlow start-up log lines', () => {
  it('stay off stderr by default (absl notice and oneDNN INFO line) and come back with TF_CPP_MIN_LOG_LEVEL=0', () => {
    const quiet = load(undefined);
    expect(quiet.stdout).toBe('loaded\n');
    expect(quiet.stderr).toBe('');
    const verbose = load('0');
    expect(verbose.stdout).toBe('loaded\n');
    expect(verbose.stderr).toMatch(/^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$/m);
    expect(verbose.stderr).toMatch(/^I\d{4} .* port\.cc:\d+\] oneDNN custom operations are on/m);
  });
});
