import { describe, expect, it } from 'vitest';

import { parseJob, parseJobList, resultCellSource } from '../ts/uws';
import { JOB, JOBS } from './fixtures';

describe('UWS', () => {
  it('lists jobs newest first with phase, time and link', () => {
    const jobs = parseJobList(JOBS);
    expect(jobs.map(j => j.id)).toEqual(['newer', 'older']);
    expect(jobs[0]).toMatchObject({
      phase: 'COMPLETED',
      runId: 'cmd',
      creationTime: '2026-11-25T09:30:00Z',
      href: 'http://127.0.0.1:8000/services/tap/async/newer'
    });
  });

  it('reads a job: query, times, rows, result link', () => {
    const job = parseJob(JOB);
    expect(job.id).toBe('newer');
    expect(job.query).toBe('SELECT TOP 5 * FROM dp02_dc2_catalogs.Object');
    expect(job.rows).toBe(5);
    expect(job.endTime).toBe('2026-11-25T09:30:03Z');
    expect(job.resultHref).toContain('/results/result');
  });

  it('has no row count when the service gives none', () => {
    expect(parseJob(JOB.replace(' rows="5"', '')).rows).toBeNull();
  });

  it('rejects documents that are not UWS', () => {
    expect(() => parseJobList(JOB)).toThrow(/not a UWS <jobs>/);
    expect(() => parseJob(JOBS)).toThrow(/not a UWS <job>/);
  });

  it('makes a cell that fetches the result', () => {
    const cell = resultCellSource('http://h/services/tap/async/newer');
    expect(cell).toContain('AsyncTAPJob("http://h/services/tap/async/newer"');
    expect(cell).toContain('fetch_result().to_table()');
  });
});
