import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statfsSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { GantryError } from '@gantry/core';
import { nodeRequire } from '../node-require.js';
import { hasStderrCapture, writeStderrCaptureSources } from './stderr-capture.js';
import {
  NATIVE_MANIFEST,
  NATIVE_PACKAGES,
  gantryCacheDir,
  nativeInstallDir,
  type NativeFlavour,
  type NativeManifest,
} from './paths.js';

/** The TensorFlow release whose wheel `gantry setup tensorflow` builds against unless `--version` says otherwise. */
export const DEFAULT_TENSORFLOW_VERSION = '2.21.0';

export interface SetupTensorflowOptions {
  /** TensorFlow wheel version (default DEFAULT_TENSORFLOW_VERSION). Ignored with `from`. */
  version?: string;
  /** An existing TensorFlow install (the `tensorflow` package folder of a Python environment, or its site-packages). */
  from?: string;
  /** Build @tensorflow/tfjs-node-gpu (CUDA) instead of @tensorflow/tfjs-node. */
  gpu?: boolean;
  /** Cache folder (default: gantryCacheDir()). */
  cacheDir?: string;
  /** Progress lines (default: console.log). */
  log?: (line: string) => void;
  /** Rebuild even when a verified build exists. */
  force?: boolean;
}

export interface SetupTensorflowResult {
  dir: string;
  manifest: NativeManifest;
  /** False when a verified build was already there. */
  built: boolean;
  /** Seconds spent per stage (download, unpack, build, verify). */
  seconds: Record<string, number>;
}

/** Wheel members the addon needs: the two libraries and the C API headers (the wheel itself unpacks to ~1.3 GB). */
const LIBRARIES = ['libtensorflow_cc.so.2', 'libtensorflow_framework.so.2'];
const HEADER_DIRS = ['tensorflow/c/', 'tensorflow/core/platform/', 'tsl/platform/', 'xla/tsl/c/'];

function fail(message: string): never {
  throw new GantryError(`setup tensorflow: ${message}`);
}

function run(cmd: string, args: string[], what: string, opts: SpawnSyncOptions = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  if (r.error) fail(`${what}: ${(r.error as NodeJS.ErrnoException).code === 'ENOENT' ? `${cmd} not found` : r.error.message}`);
  if (r.status !== 0) {
    // The tool's own error line (pip: "ERROR: ..."), else the last line it wrote.
    const lines = `${String(r.stdout ?? '')}\n${String(r.stderr ?? '')}`.split('\n').map((l) => l.trim()).filter(Boolean);
    const tail = [...lines].reverse().find((l) => /^(ERROR|error|npm ERR|gyp ERR)/.test(l)) ?? lines.at(-1);
    fail(`${what} failed${tail ? `: ${tail}` : ` (exit ${r.status})`}`);
  }
  return String(r.stdout ?? '');
}

function has(cmd: string, args: string[]): boolean {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  return !r.error && r.status === 0;
}

/** node-gyp as npm ships it (npm builds every addon with it). */
function findNodeGyp(): string {
  const candidates = [
    process.env.npm_config_node_gyp,
    join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ];
  try {
    candidates.push(nodeRequire().resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    // not installed locally
  }
  const found = candidates.find((c): c is string => c != null && existsSync(c));
  return found ?? fail('node-gyp not found (it ships with npm; set npm_config_node_gyp to its bin/node-gyp.js)');
}

/**
 * Node's C headers: `npm_config_nodedir`, else the ones installed beside this node (Debian's nodejs and the official
 * tarballs put them in <prefix>/include/node). node-gyp would otherwise download them.
 */
function findNodeDir(): string {
  const candidates = [process.env.npm_config_nodedir, resolve(dirname(process.execPath), '..')];
  const found = candidates.find((d): d is string => d != null && existsSync(join(d, 'include', 'node', 'node_api.h')));
  return found ?? fail(`Node's headers not found (no include/node/node_api.h beside ${process.execPath}; install them, e.g. Debian's libnode-dev, or set npm_config_nodedir)`);
}

function checkPrerequisites(needPip: boolean, cacheDir: string): { python: string; nodeGyp: string; nodeDir: string } {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    fail(`unsupported platform ${process.platform}-${process.arch} (TensorFlow's C library is built here for linux-x64)`);
  }
  const python = ['python3', 'python'].find((p) => has(p, ['--version'])) ?? fail('python3 not found (pip reads the TensorFlow wheel)');
  if (needPip && !has(python, ['-m', 'pip', '--version'])) fail(`pip not found (${python} -m pip); install it or use --from <TensorFlow install>`);
  if (!has('g++', ['--version'])) fail('no C++ compiler (g++) found; install build-essential');
  if (!has('make', ['--version'])) fail('make not found; install build-essential');
  if (!has('tar', ['--version'])) fail('tar not found');
  mkdirSync(cacheDir, { recursive: true });
  const fsStats = statfsSync(cacheDir);
  const freeGb = (fsStats.bavail * fsStats.bsize) / 2 ** 30;
  const neededGb = needPip ? 1.5 : 0.3;
  if (freeGb < neededGb) fail(`not enough disk in ${cacheDir}: ${freeGb.toFixed(1)} GiB free, ${neededGb} GiB needed`);
  return { python, nodeGyp: findNodeGyp(), nodeDir: findNodeDir() };
}

interface Libtensorflow {
  /** Folder holding libtensorflow_cc.so.2 and libtensorflow_framework.so.2. */
  libDir: string;
  /** Folder holding tensorflow/c/c_api.h. */
  includeDir: string;
  /** What it is, for the manifest and the backend line. */
  label: string;
}

/** An existing TensorFlow install: its `tensorflow` package folder, or a folder (site-packages) that contains one. */
function libtensorflowFrom(from: string): Libtensorflow {
  const base = resolve(from);
  for (const dir of [base, join(base, 'tensorflow')]) {
    if (LIBRARIES.every((l) => existsSync(join(dir, l))) && existsSync(join(dir, 'include', 'tensorflow', 'c', 'c_api.h'))) {
      return { libDir: dir, includeDir: join(dir, 'include'), label: `TensorFlow from ${dir}` };
    }
  }
  return fail(`--from ${from}: no TensorFlow install there (need ${LIBRARIES.join(', ')} and include/tensorflow/c/c_api.h in it or in its tensorflow/ folder)`);
}

/** pip download of the wheel (kept in the cache: a second setup, or CI on the same machine, downloads nothing). */
function downloadWheel(python: string, pkg: string, version: string, cacheDir: string, log: (s: string) => void): string {
  const wheelDir = join(cacheDir, 'wheels');
  mkdirSync(wheelDir, { recursive: true });
  const prefix = `${pkg.replace(/-/g, '_')}-${version}-`;
  const cached = readdirSync(wheelDir).find((f) => f.startsWith(prefix) && f.endsWith('.whl'));
  if (cached) {
    log(`  wheel ${cached} (cached)`);
    return join(wheelDir, cached);
  }
  log(`  pip download ${pkg}==${version} (~270 MB for tensorflow-cpu)…`);
  run(python, ['-m', 'pip', 'download', '--no-deps', '--only-binary=:all:', '--progress-bar', 'off', '-d', wheelDir, `${pkg}==${version}`],
    `pip download ${pkg}==${version}`, { stdio: ['ignore', 'pipe', 'pipe'] });
  const file = readdirSync(wheelDir).find((f) => f.startsWith(prefix) && f.endsWith('.whl'));
  return join(wheelDir, file ?? fail(`pip download ${pkg}==${version} left no wheel in ${wheelDir}`));
}

const UNPACK_SCRIPT = `
import sys, zipfile, os
wheel, dest, libs, heads = sys.argv[1], sys.argv[2], sys.argv[3].split(','), sys.argv[4].split(',')
with zipfile.ZipFile(wheel) as z:
    for m in z.infolist():
        n = m.filename
        rel = None
        if n.startswith('tensorflow/') and n[len('tensorflow/'):] in libs:
            rel = 'lib/' + n[len('tensorflow/'):]
        elif n.startswith('tensorflow/include/') and any(n[len('tensorflow/include/'):].startswith(h) for h in heads):
            rel = 'include/' + n[len('tensorflow/include/'):]
        if rel is None or n.endswith('/'):
            continue
        out = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with z.open(m) as src, open(out, 'wb') as dst:
            while True:
                b = src.read(1 << 20)
                if not b: break
                dst.write(b)
        if rel.startswith('lib/'):
            print('  unpacked', rel, round(m.file_size / 2**20), 'MB', flush=True)
`;

/** The two libraries and the C headers out of the wheel, into <cache>/libtensorflow/<wheel name>/ (complete or absent). */
function unpackWheel(python: string, wheel: string, cacheDir: string, log: (s: string) => void): Libtensorflow {
  const name = wheel.split('/').pop()!.replace(/\.whl$/, '');
  const dest = join(cacheDir, 'libtensorflow', name);
  const label = `${name.split('-').slice(0, 2).join(' ').replace(/_/g, '-')} pip wheel`;
  if (!existsSync(join(dest, '.complete'))) {
    const partial = `${dest}.partial`;
    rmSync(partial, { recursive: true, force: true });
    log(`  unpacking ${LIBRARIES.join(' and ')} and the C headers…`);
    const r = spawnSync(python, ['-c', UNPACK_SCRIPT, wheel, partial, LIBRARIES.join(','), HEADER_DIRS.join(',')], {
      encoding: 'utf8',
      stdio: ['ignore', 'inherit', 'pipe'],
    });
    if (r.status !== 0) fail(`unpacking ${wheel} failed: ${String(r.stderr).trim().split('\n').slice(-1)[0]}`);
    for (const l of LIBRARIES) if (!existsSync(join(partial, 'lib', l))) fail(`${wheel} has no tensorflow/${l}`);
    writeFileSync(join(partial, '.complete'), '');
    rmSync(dest, { recursive: true, force: true });
    renameSync(partial, dest);
  } else {
    log('  libtensorflow already unpacked');
  }
  return { libDir: join(dest, 'lib'), includeDir: join(dest, 'include'), label };
}

function npmPack(spec: string, dest: string): string {
  const out = run('npm', ['pack', '--silent', '--pack-destination', dest, spec], `npm pack ${spec}`, {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return join(dest, out.trim().split('\n').pop()!.trim());
}

function untar(tgz: string, dest: string): void {
  mkdirSync(dest, { recursive: true });
  run('tar', ['xzf', tgz, '-C', dest, '--strip-components=1'], `unpacking ${tgz}`);
}

/** A stand-in package that hands tfjs-node this process's tfjs-core (set by the loader), so there is one engine. */
function writeCoreStandIn(dir: string, name: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, version: tf.version_core, main: 'index.js', private: true }, null, 2));
  writeFileSync(
    join(dir, 'index.js'),
    `// Written by gantry setup tensorflow: tfjs-node uses the tfjs-core of the process that loads it (one engine).
const core = globalThis[Symbol.for('gantry.tfjs-core')];
if (!core) throw new Error('this tfjs-node build is loaded by @gantry/engine (useBackend), not imported directly');
module.exports = core;
`,
  );
}

/** tfjs-node's sources and JS from the npm registry (without its install script), plus google-protobuf it requires. */
function installPackage(pkg: string, tfjsVersion: string, dir: string, log: (s: string) => void): string {
  const tmp = join(dir, '.download');
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  log(`  npm pack ${pkg}@${tfjsVersion} (no install script: its download of libtensorflow 2.9 is not used)`);
  const pkgDir = join(dir, 'node_modules', pkg);
  rmSync(pkgDir, { recursive: true, force: true });
  untar(npmPack(`${pkg}@${tfjsVersion}`, tmp), pkgDir);
  const protobufRange = (JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { dependencies: Record<string, string> })
    .dependencies['google-protobuf'];
  const protobufDir = join(dir, 'node_modules', 'google-protobuf');
  rmSync(protobufDir, { recursive: true, force: true });
  untar(npmPack(`google-protobuf@${protobufRange}`, tmp), protobufDir);
  writeCoreStandIn(join(dir, 'node_modules', '@tensorflow', 'tfjs'), '@tensorflow/tfjs');
  writeCoreStandIn(join(dir, 'node_modules', '@tensorflow', 'tfjs-core'), '@tensorflow/tfjs-core');
  rmSync(tmp, { recursive: true, force: true });
  return pkgDir;
}

/** binding.gyp links -ltensorflow -ltensorflow_framework from deps/lib with rpath $ORIGIN/../../deps/lib. */
function linkLibtensorflow(pkgDir: string, lib: Libtensorflow): void {
  const deps = join(pkgDir, 'deps');
  rmSync(deps, { recursive: true, force: true });
  mkdirSync(join(deps, 'lib'), { recursive: true });
  symlinkSync(lib.includeDir, join(deps, 'include'));
  for (const l of LIBRARIES) symlinkSync(join(lib.libDir, l), join(deps, 'lib', l));
  // The C API is split: TFE_*, TF_Session*, TF_Version live in libtensorflow_cc; TF_NewTensor, TF_*Status in the framework.
  symlinkSync('libtensorflow_cc.so.2', join(deps, 'lib', 'libtensorflow.so'));
  symlinkSync('libtensorflow_framework.so.2', join(deps, 'lib', 'libtensorflow_framework.so'));
}

function buildAddon(pkgDir: string, nodeGyp: string, nodeDir: string, log: (s: string) => void): void {
  log('  node-gyp rebuild (tfjs_binding.node: 20 s on an idle 2-core machine, 2 min on a busy one)…');
  const jobs = String(Math.max(1, Math.min(4, (process.env.JOBS ? Number(process.env.JOBS) : 2))));
  run(process.execPath, [
    nodeGyp, 'rebuild', `--nodedir=${nodeDir}`, '--module_name=tfjs_binding',
    `--module_path=${join(pkgDir, 'lib', 'napi-v8')}`, '--napi_build_version=8', '-j', jobs,
  ], 'building the addon (node-gyp)', { cwd: pkgDir, stdio: ['ignore', 'pipe', 'pipe'] });
  rmSync(join(pkgDir, 'build'), { recursive: true, force: true });
}

/** The small addon that keeps TensorFlow's start-up log lines off stderr (stderr-capture.ts); a failed build only warns. */
function buildStderrCapture(installDir: string, nodeGyp: string, nodeDir: string, log: (s: string) => void): void {
  log('  node-gyp rebuild (stderr_capture.node: filters TensorFlow\'s start-up log lines)');
  const dir = writeStderrCaptureSources(installDir);
  try {
    run(process.execPath, [nodeGyp, 'rebuild', `--nodedir=${nodeDir}`], 'building the stderr capture addon (node-gyp)', {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (err) {
    // Not needed to train: without it TensorFlow's two start-up log lines show.
    log(`  ${(err as Error).message}; TensorFlow's start-up log lines will show on stderr`);
  }
}

function seconds(t0: number): number {
  return Math.round((performance.now() - t0) / 100) / 10;
}

/**
 * `gantry setup tensorflow`: obtains libtensorflow (a pip wheel in the cache, or `from` an existing install), fetches
 * @tensorflow/tfjs-node(-gpu) at the project's tfjs-core version without its install script, builds its addon
 * against that libtensorflow, and writes the manifest only after `verify` passed. Idempotent: a verified build is
 * verified again and kept.
 */
export async function setupTensorflow(
  opts: SetupTensorflowOptions,
  verify: (dir: string, manifest: NativeManifest) => Promise<string>,
): Promise<SetupTensorflowResult> {
  const log = opts.log ?? ((s: string) => console.log(s));
  const flavour: NativeFlavour = opts.gpu ? 'gpu' : 'cpu';
  const pkg = NATIVE_PACKAGES[flavour];
  const cacheDir = opts.cacheDir ?? gantryCacheDir();
  const tfjsVersion = tf.version_core;
  const version = opts.version ?? DEFAULT_TENSORFLOW_VERSION;
  if (opts.from && opts.version) fail('--version and --from exclude each other (--from uses the TensorFlow that is there)');
  if (!/^\d+\.\d+\.\d+([a-z0-9.]*)?$/.test(version)) fail(`--version must be a TensorFlow release such as 2.21.0, got "${version}"`);
  const dir = nativeInstallDir(flavour, tfjsVersion, cacheDir);
  const secondsBy: Record<string, number> = {};
  const manifestFile = join(dir, NATIVE_MANIFEST);
  const existing = existsSync(manifestFile) ? (JSON.parse(readFileSync(manifestFile, 'utf8')) as NativeManifest) : undefined;
  const wheelPackage = flavour === 'gpu' ? 'tensorflow' : 'tensorflow-cpu';
  // Bad input is named before anything is written.
  const fromLib = opts.from ? libtensorflowFrom(opts.from) : undefined;
  const wanted = fromLib?.label ?? `${wheelPackage} ${version} pip wheel`;
  if (existing && !opts.force && existing.libtensorflow === wanted && existsSync(join(dir, 'node_modules', pkg, 'lib', 'napi-v8', 'tfjs_binding.node'))) {
    log(`${pkg} ${tfjsVersion} is already built against ${existing.libtensorflow}; verifying`);
    const t0 = performance.now();
    // Builds from before the capture addon existed get it now.
    if (!hasStderrCapture(dir)) {
      const tools = checkPrerequisites(false, cacheDir);
      buildStderrCapture(dir, tools.nodeGyp, tools.nodeDir, log);
    }
    await verify(dir, existing);
    secondsBy.verify = seconds(t0);
    return { dir, manifest: existing, built: false, seconds: secondsBy };
  }
  log(`Setting up ${pkg} ${tfjsVersion} (for tfjs-core ${tfjsVersion}) in ${dir}`);
  const tools = checkPrerequisites(!fromLib, cacheDir);
  let t0 = performance.now();
  let lib: Libtensorflow;
  if (fromLib) {
    lib = fromLib;
    log(`1/4 libtensorflow: ${lib.libDir}`);
  } else {
    log(`1/4 libtensorflow from ${wheelPackage} ${version}`);
    const wheel = downloadWheel(tools.python, wheelPackage, version, cacheDir, log);
    secondsBy.download = seconds(t0);
    t0 = performance.now();
    lib = unpackWheel(tools.python, wheel, cacheDir, log);
    secondsBy.unpack = seconds(t0);
  }
  t0 = performance.now();
  rmSync(manifestFile, { force: true });
  log(`2/4 ${pkg}@${tfjsVersion}`);
  mkdirSync(dir, { recursive: true });
  const pkgDir = installPackage(pkg, tfjsVersion, dir, log);
  secondsBy.npm = seconds(t0);
  t0 = performance.now();
  log('3/4 build');
  linkLibtensorflow(pkgDir, lib);
  buildAddon(pkgDir, tools.nodeGyp, tools.nodeDir, log);
  buildStderrCapture(dir, tools.nodeGyp, tools.nodeDir, log);
  secondsBy.build = seconds(t0);
  t0 = performance.now();
  log('4/4 verify (matmul, conv filter gradient, second-order gradient against the cpu backend)');
  const manifest: NativeManifest = {
    package: pkg,
    version: tfjsVersion,
    libtensorflow: lib.label,
    tensorflowVersion: '',
    builtAt: new Date().toISOString(),
  };
  manifest.tensorflowVersion = await verify(dir, manifest);
  secondsBy.verify = seconds(t0);
  writeFileSync(manifestFile, `${JSON.stringify(manifest, null, 2)}\n`);
  return { dir, manifest, built: true, seconds: secondsBy };
}
