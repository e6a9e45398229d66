import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { encodeFileVersionEvent, encodeSummaryEvent, frameRecord, type ImageSummary, type SummaryValue } from './events.js';

export interface EventFileWriterOptions {
  /** Clock in milliseconds (tests pin it). */
  now?: () => number;
  hostname?: string;
}

/**
 * Appends TensorBoard events to `events.out.tfevents.<unix seconds>.<hostname>` in `dir`. Each event is written with
 * one synchronous write, so a crash leaves whole records and TensorBoard reads the file while it grows.
 */
export class EventFileWriter {
  readonly file: string;
  private fd: number | undefined;
  private readonly now: () => number;

  constructor(dir: string, options: EventFileWriterOptions = {}) {
    this.now = options.now ?? Date.now;
    fs.mkdirSync(dir, { recursive: true });
    const seconds = Math.floor(this.now() / 1000);
    const host = (options.hostname ?? os.hostname()).replace(/[/\\]/g, '_');
    let file = path.join(dir, `events.out.tfevents.${seconds}.${host}`);
    // Two writers started within the same second (e.g. a quick resume) must not share a file.
    for (let i = 1; fs.existsSync(file); i++) file = path.join(dir, `events.out.tfevents.${seconds}.${host}.${i}`);
    this.file = file;
    this.fd = fs.openSync(file, 'a');
    this.write(encodeFileVersionEvent(this.now() / 1000));
  }

  private write(event: Uint8Array): void {
    if (this.fd === undefined) throw new Error(`EventFileWriter: ${this.file} is closed`);
    fs.writeSync(this.fd, frameRecord(event));
  }

  /** One event holding every scalar of a step (tags such as `d_loss`, `D/gp/penalty`). */
  addScalars(step: number, scalars: Record<string, number>, wallTimeMs = this.now()): void {
    const values: SummaryValue[] = Object.entries(scalars).map(([tag, simpleValue]) => ({ tag, simpleValue }));
    if (values.length > 0) this.write(encodeSummaryEvent(wallTimeMs / 1000, step, values));
  }

  addImage(step: number, tag: string, image: ImageSummary, wallTimeMs = this.now()): void {
    this.write(encodeSummaryEvent(wallTimeMs / 1000, step, [{ tag, image }]));
  }

  close(): void {
    if (this.fd === undefined) return;
    fs.closeSync(this.fd);
    this.fd = undefined;
  }
}
