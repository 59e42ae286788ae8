import { describe, expect, it, vi } from 'vitest';

import { CatalogPanel } from '../ts/catalog';
import { HistoryPanel } from '../ts/history';
import { hubLogoutUrl } from '../ts/format';
import { IStatus, StatusItem, statusTexts } from '../ts/status';
import { JOB, JOBS, TABLESET } from './fixtures';

const STATUS: IStatus = {
  quotas: 'on',
  memory: { used_bytes: 512 * 1024 ** 2, limit_bytes: 4 * 1024 ** 3 },
  dask: { available: true, workers: 2, limit: 8 },
  storage: { used_bytes: 300 * 1024 ** 2, limit_bytes: null },
  culler: { timeout_seconds: 3600, seconds_left: 300, warn: true }
};

describe('CatalogPanel', () => {
  it('lists tables, filters them and inserts a query', async () => {
    const insert = vi.fn(async () => undefined);
    const panel = new CatalogPanel({ load: async () => TABLESET, insert });
    await panel.refresh();
    const names = () =>
      Array.from(panel.node.querySelectorAll('.jp-skydeck-table')).map(
        t => (t as HTMLElement).dataset.table
      );
    expect(names()).toEqual([
      'dp02_dc2_catalogs.Object',
      'dp02_dc2_catalogs.Visit',
      'TAP_SCHEMA.tables'
    ]);
    const ra = panel.node.querySelector('[data-column="coord_ra"]')!;
    expect(Array.from(ra.querySelectorAll('td')).map(td => td.textContent)).toEqual([
      'coord_ra',
      'deg',
      'pos.eq.ra;meta.main',
      'Right ascension'
    ]);
    panel.filterInput.value = 'band';
    panel.filterInput.dispatchEvent(new Event('input'));
    expect(names()).toEqual(['dp02_dc2_catalogs.Visit']);
    (panel.node.querySelector('.jp-skydeck-insert') as HTMLButtonElement).click();
    expect(insert).toHaveBeenCalledOnce();
    expect((insert.mock.calls[0] as unknown as string[])[0]).toContain(
      'FROM dp02_dc2_catalogs.Visit'
    );
  });

  it('shows the reason when the service is absent', async () => {
    const panel = new CatalogPanel({
      load: async () => {
        throw new Error('This lab has no TAP service');
      },
      insert: async () => undefined
    });
    await panel.refresh();
    expect(panel.node.querySelector('.jp-skydeck-message')!.textContent).toContain(
      'This lab has no TAP service'
    );
  });
});

describe('HistoryPanel', () => {
  it('shows jobs and wires load and rerun', async () => {
    const insert = vi.fn(async () => undefined);
    const rerun = vi.fn(async () => undefined);
    const panel = new HistoryPanel({
      listJobs: async () => JOBS,
      getJob: async id => (id === 'newer' ? JOB : '<broken'),
      rerun,
      insert,
      notify: () => undefined
    });
    await panel.refresh();
    const jobs = panel.node.querySelectorAll('.jp-skydeck-job');
    expect(jobs).toHaveLength(2);
    expect(jobs[0].querySelector('.jp-skydeck-phase')!.textContent).toBe('COMPLETED');
    expect(jobs[0].querySelector('.jp-skydeck-job-rows')!.textContent).toBe('5 rows');
    const older = jobs[1];
    expect(older.querySelector('.jp-skydeck-phase')!.textContent).toBe('ERROR');
    expect((older.querySelector('.jp-skydeck-load-result') as HTMLButtonElement).disabled).toBe(true);
    (jobs[0].querySelector('.jp-skydeck-load-result') as HTMLButtonElement).click();
    expect((insert.mock.calls[0] as unknown as string[])[0]).toContain('/services/tap/async/newer');
    (jobs[0].querySelector('.jp-skydeck-rerun') as HTMLButtonElement).click();
    await vi.waitFor(() => expect(rerun).toHaveBeenCalledWith('SELECT TOP 5 * FROM dp02_dc2_catalogs.Object'));
  });
});

describe('status bar', () => {
  it('formats the figures and says "no limit"', () => {
    expect(statusTexts(STATUS)).toEqual({
      memory: 'Mem 512 MiB / 4 GiB',
      dask: 'Dask 2 / 8 workers',
      storage: 'Home 300 MiB / no limit'
    });
    expect(statusTexts({ ...STATUS, dask: { available: false, workers: null, limit: null } }).dask).toBe(
      'Dask —'
    );
    const clustersOnly = { available: true, workers: null, clusters: 2, limit: 8 };
    expect(statusTexts({ ...STATUS, dask: clustersOnly }).dask).toBe('Dask 2 clusters (8 workers max)');
    const unlimited = { available: true, workers: 0, clusters: 0, limit: null };
    expect(statusTexts({ ...STATUS, dask: unlimited }).dask).toBe('Dask 0 / no limit workers');
  });

  it('shows the keep-alive control only when the culler is near', async () => {
    const ping = vi.fn(async () => undefined);
    const item = new StatusItem(async () => STATUS, ping);
    item.show_(STATUS);
    expect(item.keepAlive.hidden).toBe(false);
    expect(item.keepAlive.textContent).toContain('5 min');
    item.keepAlive.click();
    expect(ping).toHaveBeenCalledOnce();
    item.show_({ ...STATUS, culler: { timeout_seconds: null, seconds_left: null, warn: false } });
    expect(item.keepAlive.hidden).toBe(true);
  });
});

describe('logout', () => {
  it('finds the hub logout page only under a hub', () => {
    expect(hubLogoutUrl('', '/hub/')).toBe('/hub/logout');
    expect(hubLogoutUrl('https://sky.example', '/hub/')).toBe('https://sky.example/hub/logout');
    expect(hubLogoutUrl('', '')).toBeNull();
  });
});
