/**
 * CPU used by the processes of a scenario, from /proc (Linux): the services scripts/services.sh
 * started (their pid files), the replicas the bench spawned, and the whole host. On two cores a
 * latency figure means little without knowing who held the cores while it was measured.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CLK_TCK = ((): number => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

export type Service = 'ferretdb' | 'kafka' | 'redis';

/** A service's pid, from the pid file scripts/services.sh writes (undefined if not found). */
export function servicePid(service: Service): number | undefined {
  const run = process.env.SERVICES_RUN_DIR ?? fileURLToPath(new URL('../../.services', import.meta.url));
  try {
    const pid = Number(readFileSync(join(run, service, `${service}.pid`), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** utime + stime of a process, in clock ticks (proc(5) fields 14 and 15; the name may hold spaces). */
function cpuTicks(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return undefined;
  }
}

/** Busy and total jiffies of the whole host (/proc/stat `cpu` line; idle and iowait are not busy). */
function hostTicks(): { busy: number; total: number } | undefined {
  try {
    const values = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
    const total = values.reduce((a, b) => a + b, 0);
    return { busy: total - values[3]! - values[4]!, total };
  } catch {
    return undefined;
  }
}

export interface CpuReport {
  wallS: number;
  /** Cores each named process used on average over the window (undefined: not readable). */
  cores: Record<string, number | undefined>;
  /** Share of the whole host that was busy, 0..1. */
  hostBusy: number | undefined;
  /** `store 0.84, kafka 0.32, … of a core; host 97 % busy (2 cores)` */
  text: string;
}

/** Starts watching the named processes; `stop()` reports what each used since. */
export function watchCpu(pids: Record<string, number | undefined>): { stop(): CpuReport } {
  const t0 = performance.now();
  const before = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuTicks(pid)]));
  const host0 = hostTicks();
  return {
    stop() {
      const wallS = (performance.now() - t0) / 1000;
      const cores: Record<string, number | undefined> = {};
      for (const [name, pid] of Object.entries(pids)) {
        const now = cpuTicks(pid);
        const then = before[name];
        cores[name] = now === undefined || then === undefined ? undefined : (now - then) / CLK_TCK / wallS;
      }
      const host = hostTicks();
      const hostBusy = host && host0 ? (host.busy - host0.busy) / (host.total - host0.total) : undefined;
      const shares = Object.entries(cores)
        .map(([name, c]) => `${name} ${c === undefined ? 'n/a' : c.toFixed(2)}`)
        .join(', ');
      const busy = hostBusy === undefined ? 'n/a' : `${(hostBusy * 100).toFixed(0)} %`;
      return {
        wallS,
        cores,
        hostBusy,
        text: `${shares} of a core over ${wallS.toFixed(1)} s; host ${busy} busy (${availableParallelism()} cores)`,
      };
    },
  };
}
