/**
 * What a process costs, read from /proc so it counts every thread (libuv pool, GC, SQLite) and nothing
 * of the load generator: CPU time in clock ticks and resident memory.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

let clockTicks = 0;
/** Clock ticks per second (`getconf CLK_TCK`), the unit of utime/stime in /proc/PID/stat. */
export function clkTck(): number {
  if (!clockTicks) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

export const procAvailable = (): boolean => fs.existsSync('/proc/self/stat');

/** User + system CPU of the process (all its threads) in microseconds; 0 once it is gone. */
export function cpuMicros(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after its closing one.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(rest[11]);
    const stime = Number(rest[12]);
    return ((utime + stime) * 1e6) / clkTck();
  } catch {
    return 0;
  }
}

/** Resident set size in bytes (VmRSS); 0 once the process is gone. */
export function rssBytes(pid: number): number {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * How long the process's main thread has waited, runnable, for a CPU (microseconds; /proc/PID/schedstat's second
 * field): time the event loop lost to other processes on the machine, not to its own work. NaN where the kernel
 * keeps no such figure, so the report shows – rather than a wait of 0.
 */
export function runQueueWaitMicros(pid: number): number {
  try {
    return Number(fs.readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[1]) / 1000;
  } catch {
    return NaN;
  }
}

export interface ProcSample {
  at: number;
  cpuUs: number;
  rss: number;
  /** Summed over the pids' main threads. */
  waitUs: number;
}

export function sample(pids: readonly number[]): ProcSample {
  let cpuUs = 0;
  let rss = 0;
  let waitUs = 0;
  for (const pid of pids) {
    cpuUs += cpuMicros(pid);
    rss += rssBytes(pid);
    waitUs += runQueueWaitMicros(pid);
  }
  return { at: performance.now(), cpuUs, rss, waitUs };
}

/** The soft and hard limits on open files of this process, from /proc/self/limits. */
export function openFileLimit(): { soft: number; hard: number } {
  try {
    const m = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
    if (m) {
      const n = (s: string) => (s === 'unlimited' ? Infinity : Number(s));
      return { soft: n(m[1]), hard: n(m[2]) };
    }
  } catch {
    /* not Linux */
  }
  return { soft: 1024, hard: 1024 };
}
