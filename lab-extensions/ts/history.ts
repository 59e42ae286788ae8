/** The query history panel: recent async TAP jobs, with load-result and run-again. */

import { Widget } from '@lumino/widgets';

import { IJob, parseJob, parseJobList, resultCellSource } from './uws';

/** How many of the newest jobs are shown (each needs one request for its details). */
export const HISTORY_LENGTH = 20;

export interface IHistoryOptions {
  listJobs: () => Promise<string>;
  getJob: (id: string) => Promise<string>;
  rerun: (query: string) => Promise<void>;
  insert: (source: string) => Promise<void>;
  notify: (message: string, isError: boolean) => void;
}

/** Local date and time of an ISO timestamp, or the text itself when unparsable. */
export function formatTime(iso: string): string {
  const date = new Date(iso);
  return iso && !isNaN(date.getTime()) ? date.toLocaleString() : iso;
}

export async function loadHistory(options: IHistoryOptions): Promise<IJob[]> {
  const refs = parseJobList(await options.listJobs()).slice(0, HISTORY_LENGTH);
  return Promise.all(
    refs.map(async ref => {
      try {
        const job = parseJob(await options.getJob(ref.id));
        return { ...job, id: job.id || ref.id, href: ref.href };
      } catch {
        return { ...ref, query: '', startTime: '', endTime: '', rows: null, resultHref: '', error: '' };
      }
    })
  );
}

export class HistoryPanel extends Widget {
  private readonly message: HTMLElement;
  private readonly list: HTMLElement;
  private loaded = false;

  constructor(private readonly options: IHistoryOptions) {
    super();
    this.id = 'jp-skydeck-history';
    this.addClass('jp-skydeck-panel');
    this.addClass('jp-skydeck-history');
    this.title.caption = 'Query history (TAP jobs)';
    const header = document.createElement('div');
    header.className = 'jp-skydeck-panel-header';
    const title = document.createElement('h2');
    title.className = 'jp-skydeck-panel-title';
    title.textContent = 'Query history';
    const reload = document.createElement('button');
    reload.className = 'jp-mod-styled jp-skydeck-refresh';
    reload.textContent = 'Refresh';
    reload.addEventListener('click', () => void this.refresh());
    header.append(title, reload);
    this.message = document.createElement('div');
    this.message.className = 'jp-skydeck-message';
    this.list = document.createElement('ol');
    this.list.className = 'jp-skydeck-job-list';
    this.node.append(header, this.message, this.list);
  }

  protected onAfterShow(): void {
    if (!this.loaded) {
      void this.refresh();
    }
  }

  async refresh(): Promise<void> {
    this.loaded = true;
    this.message.textContent = 'Loading your queries…';
    this.message.classList.remove('jp-skydeck-error');
    let jobs: IJob[] = [];
    try {
      jobs = await loadHistory(this.options);
      this.message.textContent = jobs.length ? '' : 'You have run no asynchronous TAP queries yet.';
    } catch (error) {
      this.message.textContent = `The query history is not available: ${(error as Error).message}`;
      this.message.classList.add('jp-skydeck-error');
    }
    this.list.replaceChildren(...jobs.map(job => this.renderJob(job)));
  }

  private renderJob(job: IJob): HTMLElement {
    const item = document.createElement('li');
    item.className = 'jp-skydeck-job';
    item.dataset.job = job.id;
    const line = document.createElement('div');
    line.className = 'jp-skydeck-job-line';
    const phase = document.createElement('span');
    phase.className = `jp-skydeck-phase jp-skydeck-phase-${job.phase.toLowerCase()}`;
    phase.textContent = job.phase;
    const when = document.createElement('span');
    when.className = 'jp-skydeck-job-time';
    when.textContent = formatTime(job.creationTime);
    const rows = document.createElement('span');
    rows.className = 'jp-skydeck-job-rows';
    rows.textContent = job.rows === null ? '' : `${job.rows} rows`;
    line.append(phase, when, rows);
    const query = document.createElement('pre');
    query.className = 'jp-skydeck-job-query';
    query.textContent = job.query || '(query text not available)';
    const actions = document.createElement('div');
    actions.className = 'jp-skydeck-job-actions';
    const load = document.createElement('button');
    load.className = 'jp-mod-styled jp-skydeck-load-result';
    load.textContent = 'Load result';
    load.disabled = job.phase !== 'COMPLETED' || !job.href;
    load.title = 'Insert a cell that loads this result table';
    load.addEventListener('click', () => void this.options.insert(resultCellSource(job.href)));
    const again = document.createElement('button');
    again.className = 'jp-mod-styled jp-skydeck-rerun';
    again.textContent = 'Run again';
    again.disabled = !job.query;
    again.addEventListener('click', async () => {
      try {
        await this.options.rerun(job.query);
        this.options.notify('The query was submitted again.', false);
      } catch (error) {
        this.options.notify(`Could not run the query again: ${(error as Error).message}`, true);
      }
      await this.refresh();
    });
    actions.append(load, again);
    item.append(line, query, actions);
    if (job.error) {
      const error = document.createElement('div');
      error.className = 'jp-skydeck-error';
      error.textContent = job.error;
      item.appendChild(error);
    }
    return item;
  }
}
