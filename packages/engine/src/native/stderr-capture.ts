import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nodeRequire } from '../node-require.js';

/**
 * TensorFlow 2.21 logs through absl, and two lines come out while its libraries load (static initialisers, before
 * anything reads TF_CPP_MIN_LOG_LEVEL): absl's "WARNING: All log messages before absl::InitializeLog() is called are
 * written to STDERR" and oneDNN's INFO notice. They go straight to file descriptor 2, which Node cannot redirect (no
 * dup2), so `gantry setup tensorflow` also builds this small addon: it points fd 2 at a temporary file while the
 * TensorFlow addon loads, and the loader passes on what TF_CPP_MIN_LOG_LEVEL lets through (filterTensorflowLog).
 */
const SOURCE = String.raw`#include <node_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
/* C that also compiles as C++: the setup checks for g++ only. */

/* capture(): fd 2 writes to an anonymous temporary file from now on. Returns [saved stderr, temporary file]. */
static napi_value Capture(napi_env env, napi_callback_info info) {
  fflush(stderr);
  FILE* tmp = tmpfile();
  int temp_fd = tmp == NULL ? -1 : dup(fileno(tmp));
  if (tmp != NULL) fclose(tmp);
  int saved = temp_fd < 0 ? -1 : dup(2);
  if (saved < 0 || dup2(temp_fd, 2) < 0) {
    if (temp_fd >= 0) close(temp_fd);
    if (saved >= 0) close(saved);
    napi_throw_error(env, NULL, "stderr capture: no temporary file or dup failed");
    return NULL;
  }
  napi_value result, a, b;
  napi_create_array_with_length(env, 2, &result);
  napi_create_int32(env, saved, &a);
  napi_create_int32(env, temp_fd, &b);
  napi_set_element(env, result, 0, a);
  napi_set_element(env, result, 1, b);
  return result;
}

/* release(saved, temp): fd 2 is the original again; returns what was written to it meanwhile. */
static napi_value Release(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t saved = -1, temp_fd = -1;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2 || napi_get_value_int32(env, argv[0], &saved) != napi_ok ||
      napi_get_value_int32(env, argv[1], &temp_fd) != napi_ok) {
    napi_throw_type_error(env, NULL, "stderr release: expected the two descriptors capture() returned");
    return NULL;
  }
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  size_t size = 0, capacity = 4096;
  char* text = (char*)malloc(capacity);
  lseek(temp_fd, 0, SEEK_SET);
  for (ssize_t n; text != NULL && (n = read(temp_fd, text + size, capacity - size)) > 0;) {
    size += (size_t)n;
    if (size == capacity) {
      char* grown = (char*)realloc(text, capacity *= 2);
      if (grown == NULL) break;
      text = grown;
    }
  }
  close(temp_fd);
  napi_value result;
  napi_create_string_utf8(env, text == NULL ? "" : text, text == NULL ? 0 : size, &result);
  free(text);
  return result;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"capture", NULL, Capture, NULL, NULL, NULL, napi_default, NULL},
      {"release", NULL, Release, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, 2, props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
`;

const BINDING_GYP = `{ "targets": [ { "target_name": "stderr_capture", "sources": ["stderr_capture.cc"] } ] }\n`;

/** Where the capture addon of a native install lives (built by `gantry setup tensorflow`). */
export const stderrCaptureDir = (installDir: string): string => join(installDir, 'stderr-capture');
const addonFile = (installDir: string) => join(stderrCaptureDir(installDir), 'build', 'Release', 'stderr_capture.node');

export const hasStderrCapture = (installDir: string): boolean => existsSync(addonFile(installDir));

/** Writes the addon's sources into the install; the caller builds them with node-gyp (`rebuild` in that folder). */
export function writeStderrCaptureSources(installDir: string): string {
  const dir = stderrCaptureDir(installDir);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'stderr_capture.cc'), SOURCE);
  writeFileSync(join(dir, 'binding.gyp'), BINDING_GYP);
  return dir;
}

interface StderrCapture {
  capture(): [number, number];
  release(saved: number, temp: number): string;
}

/**
 * Runs `load` with fd 2 captured when the install has the capture addon, and writes what TensorFlow logged to
 * stderr, less what TF_CPP_MIN_LOG_LEVEL filters out. Without the addon (an older build, tfjs-node from
 * node_modules) `load` just runs.
 */
export function withTensorflowStderrFiltered<T>(installDir: string, load: () => T): T {
  let capture: StderrCapture | undefined;
  try {
    if (hasStderrCapture(installDir)) capture = nodeRequire()(addonFile(installDir)) as StderrCapture;
  } catch {
    capture = undefined;
  }
  const fds = capture?.capture();
  try {
    return load();
  } finally {
    if (capture && fds) {
      const text = filterTensorflowLog(capture.release(fds[0], fds[1]), process.env.TF_CPP_MIN_LOG_LEVEL);
      if (text) process.stderr.write(text);
    }
  }
}

const ABSL_NOTICE = /^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$/;
/** absl's line prefix: severity letter, MMDD, time (before absl is initialised: 00:00:<epoch seconds>), thread, file:line]. */
const ABSL_LINE = /^([IWEF])\d{4} [\d:.]+ +\d+ [^\]\s]+:\d+\] /;
const LEVELS: Record<string, number> = { I: 0, W: 1, E: 2, F: 3 };

/**
 * What TensorFlow wrote while loading, less the lines below TF_CPP_MIN_LOG_LEVEL (0 info, 1 warnings, 2 errors, 3
 * fatal only; default 0 as in TensorFlow) and absl's notice about its own initialisation whenever anything is filtered.
 * Lines that are not absl log lines always pass.
 */
export function filterTensorflowLog(text: string, minLogLevel: string | undefined): string {
  const min = Number(minLogLevel ?? 0) || 0;
  if (min <= 0) return text;
  return text
    .split(/(?<=\n)/)
    .filter((line) => {
      const body = line.replace(/\r?\n$/, '');
      if (ABSL_NOTICE.test(body)) return false;
      const severity = ABSL_LINE.exec(body)?.[1];
      return severity == null || LEVELS[severity] >= min;
    })
    .join('');
}
