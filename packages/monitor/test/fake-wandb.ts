import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  json?: any;
  status: number;
}

/**
 * A loopback stand-in for a W&B server: answers UpsertBucket, CreateRunFiles, upload PUTs and file_stream POSTs,
 * records every request, and fails the next N requests of a route on demand. Stops answering after `limit`
 * requests so a runaway retry loop fails the test instead of hanging it.
 */
export class FakeWandb {
  readonly requests: RecordedRequest[] = [];
  private readonly failures: { match: RegExp; status: number; count: number }[] = [];
  private server?: http.Server;
  private held: (() => void)[] = [];
  hold = false;
  limit = 500;
  port = 0;

  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The next `count` requests whose "METHOD url" matches answer with `status`. */
  fail(match: RegExp, status: number, count = 1): void {
    this.failures.push({ match, status, count });
  }

  async start(port = 0): Promise<this> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const answer = () => this.handle(req, Buffer.concat(chunks), res);
        if (this.hold) this.held.push(answer);
        else answer();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve));
    this.port = (this.server!.address() as AddressInfo).port;
    return this;
  }

  release(): void {
    this.hold = false;
    for (const answer of this.held.splice(0)) answer();
  }

  async stop(): Promise<void> {
    this.release();
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
    this.server = undefined;
  }

  private handle(req: http.IncomingMessage, body: Buffer, res: http.ServerResponse): void {
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const record: RecordedRequest = { method, url, headers: req.headers, body, status: 200 };
    if (req.headers['content-type']?.includes('json')) record.json = JSON.parse(body.toString('utf8'));
    this.requests.push(record);
    const send = (status: number, payload?: unknown) => {
      record.status = status;
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(payload === undefined ? '' : JSON.stringify(payload));
    };
    if (this.requests.length > this.limit) return send(503, { error: 'request limit of the fake server reached' });
    const failure = this.failures.find((f) => f.count > 0 && f.match.test(`${method} ${url}`));
    if (failure) {
      failure.count -= 1;
      return send(failure.status, { error: 'injected failure' });
    }
    if (method === 'POST' && url === '/graphql') {
      const { query, variables } = record.json;
      if (query.includes('mutation UpsertBucket')) {
        return send(200, {
          data: {
            upsertBucket: {
              bucket: {
                id: 'bucket-id',
                name: variables.name,
                displayName: variables.displayName ?? null,
                project: { id: 'p', name: variables.project, entity: { id: 'e', name: variables.entity ?? 'default-entity' } },
                historyLineCount: 0,
              },
              inserted: true,
            },
          },
        });
      }
      if (query.includes('mutation CreateRunFiles')) {
        return send(200, {
          data: {
            createRunFiles: {
              runID: 'run-storage-id',
              uploadHeaders: ['X-Upload-Check: yes'],
              files: variables.files.map((name: string) => ({ name, uploadUrl: `${this.baseUrl}/storage/${name}?signed=1` })),
            },
          },
        });
      }
      return send(400, { errors: [{ message: 'unknown operation' }] });
    }
    if (method === 'PUT' && url.startsWith('/storage/')) return send(200);
    if (method === 'POST' && /^\/files\/[^/]+\/[^/]+\/[^/]+\/file_stream$/.test(url)) return send(200, { exitcode: null, limits: {} });
    return send(404, { error: 'not found' });
  }

  fileStreams(): RecordedRequest[] {
    return this.requests.filter((r) => r.url.endsWith('/file_stream') && r.status === 200);
  }

  /** History rows the server accepted, in order, checking that offsets are contiguous. */
  acceptedHistory(): Record<string, unknown>[] {
    const rows: Record<string, unknown>[] = [];
    for (const r of this.fileStreams()) {
      const h = r.json.files?.['wandb-history.jsonl'];
      if (!h) continue;
      if (h.offset !== rows.length) throw new Error(`history offset ${h.offset}, expected ${rows.length}`);
      for (const line of h.content) rows.push(JSON.parse(line));
    }
    return rows;
  }
}
