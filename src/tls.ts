import fs from 'node:fs';
import tls from 'node:tls';
import { ConfigError } from './config.js';
import type { Config } from './config.js';
import type { Logger } from './log.js';

export type TlsConfig = Pick<Config, 'tlsCert' | 'tlsKey'>;

/** The certificate and key as read from disk, checked to form a usable pair. */
export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
}

/** Whether TLS is on; a certificate without its key (or the reverse) is a configuration error. */
export function tlsEnabled(config: TlsConfig): boolean {
  if (!config.tlsCert && !config.tlsKey) return false;
  if (!config.tlsCert || !config.tlsKey) {
    throw new ConfigError(`TLS needs both a certificate and its key: set ${config.tlsCert ? '--tls-key / IOTC_TLS_KEY' : '--tls-cert / IOTC_TLS_CERT'} too`);
  }
  return true;
}

/** Reads both files and makes a secure context from them, so a mismatched or unreadable pair fails here, not in a handshake. */
export function readTlsFiles(config: TlsConfig): TlsFiles {
  const read = (file: string, what: string) => {
    try {
      return fs.readFileSync(file);
    } catch (err) {
      throw new ConfigError(`Cannot read the TLS ${what} ${file}: ${(err as Error).message}`);
    }
  };
  const files = { cert: read(config.tlsCert, 'certificate'), key: read(config.tlsKey, 'key') };
  try {
    tls.createSecureContext(files);
  } catch (err) {
    throw new ConfigError(`The TLS certificate ${config.tlsCert} and key ${config.tlsKey} cannot be used together: ${(err as Error).message}`);
  }
  return files;
}

/**
 * Keeps the listeners' certificate in step with the files: `reload()` (SIGHUP) and a change of either file
 * swap the secure context of every listener; open connections keep the one they started with. A pair that
 * does not load (a renewal caught half-written) is logged and the old certificate stays.
 */
export class CertificateReloader {
  private readonly files: string[];
  private debounce: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly config: TlsConfig,
    private readonly apply: (files: TlsFiles) => void,
    private readonly log: Logger,
    /** How often the files are looked at: polling also sees a file replaced by rename, as certbot and Kubernetes do. */
    pollMs = 2000,
  ) {
    this.files = [config.tlsCert, config.tlsKey];
    for (const file of this.files) fs.watchFile(file, { interval: pollMs, persistent: false }, this.changed);
  }

  private readonly changed = (curr: fs.Stats, prev: fs.Stats): void => {
    if (curr.mtimeMs === prev.mtimeMs && curr.ino === prev.ino && curr.size === prev.size) return;
    // Cert and key are usually written one after the other: wait for both before loading.
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => {
      this.debounce = null;
      this.reload('file changed');
    }, 300);
    this.debounce.unref();
  };

  /** Loads the files again and applies them; returns whether the new certificate is in use. */
  reload(why = 'SIGHUP'): boolean {
    if (this.stopped) return false;
    try {
      this.apply(readTlsFiles(this.config));
      this.log.info({ why, cert: this.config.tlsCert }, 'TLS certificate reloaded');
      return true;
    } catch (err) {
      this.log.error({ why, err: (err as Error).message }, 'TLS certificate not reloaded: keeping the one in use');
      return false;
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.debounce) clearTimeout(this.debounce);
    for (const file of this.files) fs.unwatchFile(file, this.changed);
  }
}
