/** Status bar: memory, Dask workers, home storage, and a keep-alive control. */

import { Widget } from '@lumino/widgets';

import { formatBytes, formatDuration, usedOf } from './format';

export interface IStatus {
  quotas: 'on' | 'off' | 'absent' | 'error';
  memory: { used_bytes: number | null; limit_bytes: number | null };
  dask: {
    available: boolean;
    workers: number | null;
    clusters?: number | null;
    limit: number | null;
  };
  storage: { used_bytes: number | null; limit_bytes: number | null; complete?: boolean };
  culler: { timeout_seconds: number | null; seconds_left: number | null; warn: boolean };
}

/** The three figures as text, e.g. "Mem 1.2 GiB / 4 GiB". */
export function statusTexts(status: IStatus): { memory: string; dask: string; storage: string } {
  const memory = `Mem ${usedOf(status.memory.used_bytes, status.memory.limit_bytes, formatBytes)}`;
  const { available, workers, clusters, limit } = status.dask;
  let dask = 'Dask —';
  if (available && (workers !== null || clusters === null || clusters === undefined)) {
    dask = `Dask ${usedOf(workers, limit)} workers`;
  } else if (available) {
    const max = limit === null ? 'no limit' : `${limit} workers max`;
    dask = `Dask ${clusters} cluster${clusters === 1 ? '' : 's'} (${max})`;
  }
  const storage = `Home ${usedOf(status.storage.used_bytes, status.storage.limit_bytes, formatBytes)}`;
  return { memory, dask, storage };
}

export const POLL_MS = 10000;

export class StatusItem extends Widget {
  readonly keepAlive: HTMLButtonElement;
  private readonly memory: HTMLElement;
  private readonly dask: HTMLElement;
  private readonly storage: HTMLElement;
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(
    private readonly load: () => Promise<IStatus>,
    private readonly ping: () => Promise<void>
  ) {
    super();
    this.addClass('jp-skydeck-status');
    this.memory = document.createElement('span');
    this.memory.className = 'jp-skydeck-status-memory';
    this.dask = document.createElement('span');
    this.dask.className = 'jp-skydeck-status-dask';
    this.storage = document.createElement('span');
    this.storage.className = 'jp-skydeck-status-storage';
    this.keepAlive = document.createElement('button');
    this.keepAlive.className = 'jp-skydeck-keepalive';
    this.keepAlive.hidden = true;
    this.keepAlive.addEventListener('click', async () => {
      await this.ping();
      await this.update_();
    });
    this.node.append(this.memory, this.dask, this.storage, this.keepAlive);
  }

  start(): void {
    void this.update_();
    this.timer = setInterval(() => void this.update_(), POLL_MS);
  }

  dispose(): void {
    if (this.timer) {
      clearInterval(this.timer);
    }
    super.dispose();
  }

  show_(status: IStatus): void {
    const texts = statusTexts(status);
    this.memory.textContent = texts.memory;
    this.dask.textContent = texts.dask;
    this.dask.title = status.dask.available
      ? 'Dask workers running / your limit'
      : 'No Dask figures: the quota service is not available';
    this.storage.textContent = texts.storage;
    this.storage.title =
      status.quotas === 'off'
        ? 'Quotas are off on this platform'
        : status.quotas === 'on'
          ? 'Home storage used / quota'
          : 'Home storage used (no quota service)';
    const culler = status.culler;
    this.keepAlive.hidden = !culler.warn;
    if (culler.warn && culler.seconds_left !== null) {
      this.keepAlive.textContent = `Idle: stops in ${formatDuration(culler.seconds_left)} · Keep alive`;
      this.keepAlive.title = 'Your server stops when idle; click to keep it running';
    }
  }

  private async update_(): Promise<void> {
    try {
      this.show_(await this.load());
      this.removeClass('jp-skydeck-status-error');
    } catch {
      this.addClass('jp-skydeck-status-error');
    }
  }
}
