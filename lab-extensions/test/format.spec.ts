import { describe, expect, it } from 'vitest';

import { formatBytes, formatDuration, tutorialLabel, usedOf } from '../ts/format';

describe('format', () => {
  it('formats bytes in binary units', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(4 * 1024 ** 3)).toBe('4 GiB');
    expect(formatBytes(300 * 1024 ** 2)).toBe('300 MiB');
  });

  it('reads a null limit as "no limit"', () => {
    expect(usedOf(2, 8)).toBe('2 / 8');
    expect(usedOf(2, null)).toBe('2 / no limit');
    expect(usedOf(null, undefined)).toBe('? / no limit');
    expect(usedOf(1024, 2048, formatBytes)).toBe('1 KiB / 2 KiB');
  });

  it('formats the time left', () => {
    expect(formatDuration(42)).toBe('42 s');
    expect(formatDuration(600)).toBe('10 min');
    expect(formatDuration(3 * 3600 + 120)).toBe('3 h 2 min');
    expect(formatDuration(-5)).toBe('0 s');
  });

  it('marks edited and outdated tutorial copies', () => {
    expect(tutorialLabel('Intro', 'new')).toBe('Intro');
    expect(tutorialLabel('Intro', 'current')).toBe('Intro');
    expect(tutorialLabel('Intro', 'edited')).toBe('Intro (edited)');
    expect(tutorialLabel('Intro', 'outdated')).toBe('Intro (update available)');
    expect(tutorialLabel('Intro', undefined)).toBe('Intro');
  });
});
