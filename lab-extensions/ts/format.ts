/** Formatting of the status bar's figures. Pure functions, unit-tested. */

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** Bytes as a short human string: 0 B, 512 KiB, 1.5 GiB. */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = unit === 0 || value >= 100 ? 0 : value >= 10 ? 1 : 1;
  return `${value.toFixed(digits).replace(/\.0$/, '')} ${UNITS[unit]}`;
}

/** `used / limit`, where a null limit reads "no limit". */
export function usedOf(
  used: number | null | undefined,
  limit: number | null | undefined,
  format: (value: number) => string = String
): string {
  const left = used === null || used === undefined ? '?' : format(used);
  const right = limit === null || limit === undefined ? 'no limit' : format(limit);
  return `${left} / ${right}`;
}

/** Minutes and seconds left, for the keep-alive control. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) {
    return `${s} s`;
  }
  const minutes = Math.floor(s / 60);
  if (minutes < 60) {
    return `${minutes} min`;
  }
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** The hub's logout address, or null when this lab does not run under JupyterHub. */
export function hubLogoutUrl(hubHost: string, hubPrefix: string): string | null {
  if (!hubPrefix) {
    return null;
  }
  return `${hubHost}${hubPrefix.endsWith('/') ? hubPrefix : hubPrefix + '/'}logout`;
}

/** A tutorial's menu label: its title, and what is special about the user's copy. */
export function tutorialLabel(title: string, state: string | undefined): string {
  if (state === 'edited') {
    return `${title} (edited)`;
  }
  if (state === 'outdated') {
    return `${title} (update available)`;
  }
  return title;
}
