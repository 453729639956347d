import { Sharing } from '../core/sharing.js';
import type { Store } from '../store/types.js';
import type { Flags } from './commands.js';
import { UsageError } from './io.js';

/**
 * `iotc device share ID --email E --role viewer|operator` and `iotc device unshare ID --email E`, run on the
 * server's machine as an administrator. No relay here: a running server sees the change in the store's device
 * events and drops or updates the shared user's live connections within a second.
 */
export async function shareCommand(command: 'device share' | 'device unshare', id: string | undefined, flags: Flags, store: Store, out: (s: string) => void): Promise<number> {
  if (!id) throw new UsageError(`give the device id: iotc ${command} ID --email E${command === 'device share' ? ' --role viewer|operator' : ''}`);
  if (typeof flags.email !== 'string' || flags.email === '') throw new UsageError('--email is required');
  const sharing = new Sharing(store, null);
  if (command === 'device unshare') {
    await sharing.unshare(null, id, { email: flags.email });
    out(flags.json ? JSON.stringify({ id, email: flags.email.trim().toLowerCase(), state: 'unshared' }) : `device ${id} is no longer shared with ${flags.email}`);
    return 0;
  }
  if (typeof flags.role !== 'string' || flags.role === '') throw new UsageError('--role is required: viewer or operator');
  const result = await sharing.share(null, id, { email: flags.email, role: flags.role });
  if (flags.json) out(JSON.stringify({ id, ...result }));
  else if (result.state === 'shared') out(`device ${id} shared with ${result.email} as ${result.role}`);
  else out(`${result.email} has no account yet: invited as ${result.role}; the share starts when they sign up with this email`);
  return 0;
}
