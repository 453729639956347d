import fs from 'node:fs';

/**
 * A running server leaves `<database>.running` beside its SQLite file, holding its process id, so that
 * `iotc restore` can refuse to swap the file under it. A marker left by a crash names a process that is gone
 * and is ignored.
 */
const markerOf = (dbFile: string) => `${dbFile}.running`;

export function markRunning(dbFile: string): () => void {
  const marker = markerOf(dbFile);
  const mine = `${process.pid}\n`;
  fs.writeFileSync(marker, mine, { mode: 0o600 });
  return () => {
    try {
      // Another server may have started on the same file since: leave its marker.
      if (fs.readFileSync(marker, 'utf8') === mine) fs.unlinkSync(marker);
    } catch {
      // Already gone.
    }
  };
}

/** The process id of a live server using this SQLite file, or null. */
export function runningServerPid(dbFile: string): number | null {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(markerOf(dbFile), 'utf8').trim());
  } catch {
    return null;
  }
  if (!Number.isInteger(pid) || pid <= 0) return null;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (err) {
    // EPERM: the process exists but belongs to another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM' ? pid : null;
  }
}
