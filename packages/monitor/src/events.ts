import '@gantry/core';

declare module '@gantry/core' {
  interface GantryEvents {
    /**
     * A fixed-noise sample image was written (by `sampleGrid`). TensorBoard and W&B plugins pick it up from here,
     * so the generator runs once per sampling step whatever else is listening.
     */
    'monitor:samples': {
      step: number;
      /** Path of the PNG on disk. */
      file: string;
      png: Buffer;
      width: number;
      height: number;
      channels: 1 | 3;
      /** `grid` for images, `scatter` for 2-D vectors. */
      kind: 'grid' | 'scatter';
    };
  }
}

export {};
