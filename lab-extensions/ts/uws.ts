/**
 * Parsing of UWS 1.1 documents from the TAP service's `/async` endpoint:
 * the job list (`uws:jobs`) and a single job (`uws:job`).
 */

export interface IJobRef {
  id: string;
  href: string;
  phase: string;
  creationTime: string;
  runId: string;
}

export interface IJob extends IJobRef {
  query: string;
  startTime: string;
  endTime: string;
  rows: number | null;
  resultHref: string;
  error: string;
}

const XLINK = 'http://www.w3.org/1999/xlink';

function parse(xml: string, what: string): Document {
  const doc = new DOMParser().parseFromString(xml, 'application/xml');
  if (doc.getElementsByTagName('parsererror').length) {
    throw new Error(`The TAP service answered with a ${what} that is not valid XML.`);
  }
  return doc;
}

function childText(parent: Element, localName: string): string {
  const found = Array.from(parent.children).find(child => child.localName === localName);
  return (found?.textContent ?? '').trim();
}

function href(element: Element): string {
  return element.getAttributeNS(XLINK, 'href') ?? element.getAttribute('xlink:href') ?? '';
}

/** Parse a UWS job list; newest first (by creation time, then document order). */
export function parseJobList(xml: string): IJobRef[] {
  const doc = parse(xml, 'job list');
  const root = doc.documentElement;
  if (root.localName !== 'jobs') {
    throw new Error(`The TAP job list starts with <${root.localName}>, not a UWS <jobs>.`);
  }
  const jobs = Array.from(root.children)
    .filter(child => child.localName === 'jobref')
    .map(ref => ({
      id: ref.getAttribute('id') ?? '',
      href: href(ref),
      phase: childText(ref, 'phase'),
      creationTime: childText(ref, 'creationTime'),
      runId: childText(ref, 'runId')
    }));
  return jobs
    .map((job, index) => ({ job, index }))
    .sort((a, b) => {
      const byTime = b.job.creationTime.localeCompare(a.job.creationTime);
      return byTime !== 0 ? byTime : b.index - a.index;
    })
    .map(entry => entry.job);
}

function rowsOf(result: Element | undefined): number | null {
  if (!result) {
    return null;
  }
  for (const name of ['rows', 'rowCount', 'size']) {
    const value = result.getAttribute(name);
    if (name !== 'size' && value !== null && /^\d+$/.test(value)) {
      return Number(value);
    }
  }
  return null;
}

/** Parse one UWS job document. */
export function parseJob(xml: string): IJob {
  const doc = parse(xml, 'job description');
  const root = doc.documentElement;
  if (root.localName !== 'job') {
    throw new Error(`The TAP job document starts with <${root.localName}>, not a UWS <job>.`);
  }
  const parameters = Array.from(root.getElementsByTagNameNS('*', 'parameter'));
  const query = parameters.find(p => (p.getAttribute('id') ?? '').toLowerCase() === 'query');
  const results = Array.from(root.getElementsByTagNameNS('*', 'result'));
  const result = results.find(r => r.getAttribute('id') === 'result') ?? results[0];
  const error = Array.from(root.children).find(child => child.localName === 'errorSummary');
  return {
    id: childText(root, 'jobId'),
    href: '',
    phase: childText(root, 'phase'),
    creationTime: childText(root, 'creationTime'),
    runId: childText(root, 'runId'),
    startTime: childText(root, 'startTime'),
    endTime: childText(root, 'endTime'),
    query: (query?.textContent ?? '').trim(),
    rows: rowsOf(result),
    resultHref: result ? href(result) : '',
    error: error ? childText(error, 'message') : ''
  };
}

/** Python for a notebook cell that loads a finished job's result table. */
export function resultCellSource(jobUrl: string): string {
  return [
    'from pyvo.dal import AsyncTAPJob',
    'from skydeck.lab import get_tap_service',
    '',
    `job = AsyncTAPJob(${JSON.stringify(jobUrl)}, session=get_tap_service()._session)`,
    'results = job.fetch_result().to_table()',
    'results'
  ].join('\n');
}
