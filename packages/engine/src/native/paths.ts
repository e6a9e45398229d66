import { homedir } from 'node:os';
import { join } from 'node:path';

/** The tfjs-node flavours `gantry setup tensorflow` builds: CPU, or GPU (`--gpu`). */
export type NativeFlavour = 'cpu' | 'gpu';

export const NATIVE_PACKAGES: Record<NativeFlavour, string> = {
  cpu: '@tensorflow/tfjs-node',
  gpu: '@tensorflow/tfjs-node-gpu',
};

/** Where Gantry keeps downloads and builds: `GANTRY_CACHE`, else `$XDG_CACHE_HOME/gantry`, else `~/.cache/gantry`. */
export function gantryCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.GANTRY_CACHE) return env.GANTRY_CACHE;
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'gantry');
}

/**
 * The folder one built tfjs-node lives in: `<cache>/tensorflow/<package>-<version>/`, holding
 * `node_modules/@tensorflow/tfjs-node[-gpu]` (its `lib/napi-v8/tfjs_binding.node` and `deps/lib`), the two stand-in
 * packages that hand it the project's tfjs-core, google-protobuf, and `gantry-native.json` (what it was built from).
 */
export function nativeInstallDir(flavour: NativeFlavour, tfjsVersion: string, cacheDir = gantryCacheDir()): string {
  return join(cacheDir, 'tensorflow', `${NATIVE_PACKAGES[flavour].slice('@tensorflow/'.length)}-${tfjsVersion}`);
}

export const NATIVE_MANIFEST = 'gantry-native.json';

/** Written by the setup after the addon passed its checks; the loader reads it. */
export interface NativeManifest {
  package: string;
  /** tfjs-node version = the tfjs-core version it was built for. */
  version: string;
  /** Where libtensorflow came from, e.g. "tensorflow-cpu 2.21.0 (pip wheel)" or a --from folder. */
  libtensorflow: string;
  /** TF_Version() reported by the built addon. */
  tensorflowVersion: string;
  builtAt: string;
}

/** The symbol under which the engine hands its tfjs-core module to the stand-in packages of the native install. */
export const TFJS_CORE_HANDOFF = Symbol.for('gantry.tfjs-core');
