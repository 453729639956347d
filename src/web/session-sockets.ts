import { IotcError } from '../core/errors.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/types.js';

type Close = (err: IotcError) => void;

/**
 * The live sockets the device pages opened with a login cookie, by session. Logging out (or logging in
 * again, which ends the old session) closes that session's sockets on this node at once; a check every
 * `checkMs` closes those whose session ended otherwise: expired, pruned, or logged out through another node.
 */
export class SessionSockets {
  private readonly bySession = new Map<string, Set<Close>>();
  private timer: NodeJS.Timeout | null = null;
  private checking = false;

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
    private readonly checkMs = 10_000,
  ) {}

  /** Registers a socket's close function; returns the function to call when the socket closes by itself. */
  watch(sessionIdHash: string, close: Close): () => void {
    let set = this.bySession.get(sessionIdHash);
    if (!set) this.bySession.set(sessionIdHash, (set = new Set()));
    set.add(close);
    this.timer ??= setInterval(() => void this.check(), this.checkMs).unref();
    return () => {
      set.delete(close);
      if (set.size === 0 && this.bySession.get(sessionIdHash) === set) this.bySession.delete(sessionIdHash);
      if (this.bySession.size === 0) this.stop();
    };
  }

  /** The session ended: its sockets close now, with E_AUTH. */
  end(sessionIdHash: string, why = 'You logged out: log in again to see live values'): void {
    const set = this.bySession.get(sessionIdHash);
    if (!set) return;
    this.bySession.delete(sessionIdHash);
    for (const close of set) close(new IotcError('E_AUTH', why));
    if (this.bySession.size === 0) this.stop();
  }

  get sessions(): number {
    return this.bySession.size;
  }

  async check(now = Date.now()): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      for (const idHash of [...this.bySession.keys()]) {
        if (!(await this.store.getSession(idHash, now))) this.end(idHash, 'Your login ended: log in again to see live values');
      }
    } catch (err) {
      this.log.warn({ err }, 'could not check the sessions of live sockets');
    } finally {
      this.checking = false;
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

const perStore = new WeakMap<Store, SessionSockets>();

/** One registry per hub (keyed by its store): the upgrade authenticator and the web app's log-out share it. */
export function sessionSockets(store: Store, log: Logger): SessionSockets {
  let live = perStore.get(store);
  if (!live) perStore.set(store, (live = new SessionSockets(store, log)));
  return live;
}
