/**
 * Live sweep changes for subscriptions: ONE dedicated Postgres connection per API server runs
 * `LISTEN ladder_sweep` (the triggers of migration 0002 send the sweep id on every trial status
 * change and sweep update) and fans each notification out to the subscribers of that sweep.
 * No polling: a subscriber wakes only when its sweep changed.
 *
 * The connection opens with the first subscriber. When it drops, it reconnects with backoff and
 * then wakes every subscriber once, since notifications sent meanwhile were lost.
 */
import { Client, type ClientConfig } from 'pg';
import { Repeater, SlidingBuffer } from 'graphql-yoga';
import { TOKEN_CHANNEL } from '../core/auth/tokens';

export const SWEEP_CHANNEL = 'ladder_sweep';
export { TOKEN_CHANNEL };

/**
 * A long-lived listener (the read caches): unlike a subscriber it hears every sweep, and it is
 * told when notifications may have been lost, so it can drop what it cached.
 */
export interface NotificationWatcher {
  /** The sweep, or the status of one of its trials, changed. */
  sweepChanged?(sweepId: string): void;
  /** An API token was revoked (its id). */
  tokenRevoked?(tokenId: string): void;
  /** The LISTEN connection dropped: notifications sent from now until it is back are lost. */
  reset?(): void;
}

export interface SweepNotifierOptions {
  /** How to open the LISTEN connection (e.g. the pool's options). */
  connection: ClientConfig;
  log?: (message: string, fields?: Record<string, unknown>) => void;
  /** Backoff bounds for reconnecting, ms (defaults 100 and 5000). */
  minRetryMs?: number;
  maxRetryMs?: number;
}

type Callback = () => void;

export class SweepNotifier {
  private client: Client | null = null;
  private connecting: Promise<void> | null = null;
  private readonly subscribers = new Map<string, Set<Callback>>();
  private readonly watchers = new Set<NotificationWatcher>();
  private closed = false;
  private retryMs: number;
  private retryTimer: NodeJS.Timeout | null = null;
  /** Number of LISTEN connections made (tests check reconnects). */
  connections = 0;

  constructor(private readonly options: SweepNotifierOptions) {
    this.retryMs = options.minRetryMs ?? 100;
  }

  /** Resolves once the LISTEN connection is up (opening it when needed). */
  ready(): Promise<void> {
    if (this.closed) return Promise.reject(new Error('notifier closed'));
    if (this.client) return Promise.resolve();
    this.connecting ??= this.connect().finally(() => (this.connecting = null));
    return this.connecting;
  }

  private async connect(): Promise<void> {
    for (;;) {
      const client = new Client(this.options.connection);
      client.on('error', () => {}); // followed by 'end', handled there
      try {
        await client.connect();
        await client.query(`LISTEN ${SWEEP_CHANNEL}; LISTEN ${TOKEN_CHANNEL}`);
      } catch (err) {
        await client.end().catch(() => {});
        if (this.closed) throw new Error('notifier closed');
        this.options.log?.('sweep notifier: connect failed, retrying', { error: (err as Error).message, retryMs: this.retryMs });
        await new Promise((r) => setTimeout(r, this.retryMs));
        this.retryMs = Math.min(this.retryMs * 2, this.options.maxRetryMs ?? 5000);
        continue;
      }
      if (this.closed) {
        await client.end().catch(() => {});
        throw new Error('notifier closed');
      }
      this.connections++;
      this.retryMs = this.options.minRetryMs ?? 100;
      client.on('notification', (msg) => {
        if (!msg.payload) return;
        if (msg.channel === SWEEP_CHANNEL) this.fire(msg.payload);
        else if (msg.channel === TOKEN_CHANNEL) for (const w of this.watchers) w.tokenRevoked?.(msg.payload);
      });
      client.once('end', () => this.onDrop(client));
      this.client = client;
      return;
    }
  }

  private onDrop(client: Client) {
    if (this.client !== client) return;
    this.client = null;
    for (const w of this.watchers) w.reset?.();
    if (this.closed) return;
    this.options.log?.('sweep notifier: connection lost, reconnecting');
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (this.closed || (this.subscribers.size === 0 && this.watchers.size === 0)) return;
      this.ready().then(
        () => this.fireAll(),
        () => {},
      );
    }, this.retryMs);
  }

  /** Whether notifications are being heard right now (a cache may fill only then). */
  get listening(): boolean {
    return this.client !== null;
  }

  /**
   * Registers a watcher and opens the LISTEN connection in the background if needed (it stays
   * open, reconnecting, while a watcher or subscriber is left).
   */
  watch(watcher: NotificationWatcher): () => void {
    this.watchers.add(watcher);
    if (!this.closed) this.ready().catch(() => {});
    return () => void this.watchers.delete(watcher);
  }

  private fire(sweepId: string) {
    for (const w of this.watchers) w.sweepChanged?.(sweepId);
    for (const cb of this.subscribers.get(sweepId) ?? []) cb();
  }

  private fireAll() {
    for (const set of this.subscribers.values()) for (const cb of set) cb();
  }

  subscribe(sweepId: string, cb: Callback): () => void {
    let set = this.subscribers.get(sweepId);
    if (!set) this.subscribers.set(sweepId, (set = new Set()));
    set.add(cb);
    return () => {
      set.delete(cb);
      if (set.size === 0) this.subscribers.delete(sweepId);
    };
  }

  /**
   * The changes of one sweep as an async iterable of its id: one item at once (the current
   * state, after LISTEN is up), then one per change. Bursts coalesce: a slow consumer sees the
   * latest change, not a backlog.
   */
  changes(sweepId: string): Repeater<string> {
    return new Repeater<string>(async (push, stop) => {
      const unsubscribe = this.subscribe(sweepId, () => void push(sweepId));
      try {
        await Promise.race([this.ready(), stop]);
        void push(sweepId);
        await stop;
      } finally {
        unsubscribe();
      }
    }, new SlidingBuffer(1));
  }

  /** Drops the LISTEN connection as if the network failed (tests). */
  simulateDrop(): void {
    void this.client?.end();
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.watchers) w.reset?.();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const client = this.client;
    this.client = null;
    await this.connecting?.catch(() => {});
    await client?.end().catch(() => {});
  }
}

/**
 * What a subscriber of a sweep should see, from its change notifications: the state is loaded
 * once per notification, sent only when it differs from the last one sent (a notification burst
 * or a reconnect often leaves nothing visible changed), and the stream ends after the first final
 * state is sent, so clients are told the sweep is over instead of waiting on a silent stream.
 * Ending (or the client leaving) returns `changes`, which unsubscribes it.
 */
export async function* distinctStates<T>(
  changes: AsyncIterable<unknown>,
  load: () => Promise<T>,
  key: (state: T) => string,
  isFinal: (state: T) => boolean,
): AsyncGenerator<T> {
  let last: string | null = null;
  for await (const _ of changes) {
    const state = await load();
    const k = key(state);
    if (k === last) continue;
    last = k;
    yield state;
    if (isFinal(state)) return;
  }
}
