const UNITS: Array<[string, number]> = [
  ["d", 86_400_000],
  ["h", 3_600_000],
  ["m", 60_000],
  ["s", 1_000],
];

/**
 * Formats a duration in milliseconds as the two largest non-zero units, e.g. "1h 5m" or "42s".
 * Durations under a second are shown in milliseconds, because short tasks are common and "0s" hides them.
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) {
    return "-";
  }
  if (ms < 1_000) {
    return `${Math.round(ms)}ms`;
  }
  const parts: string[] = [];
  let rest = ms;
  for (const [unit, size] of UNITS) {
    const count = Math.floor(rest / size);
    if (count > 0) {
      parts.push(`${count}${unit}`);
      rest -= count * size;
    }
    if (parts.length === 2) {
      break;
    }
  }
  return parts.join(" ");
}
