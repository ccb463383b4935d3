// The log view's helpers: runs of a subtask's log, and search matches.

import type { LogLine } from "./taskState";

export function runsOf(lines: readonly LogLine[]): number[] {
  return [...new Set(lines.map((l) => l.runTime))].sort((a, b) => a - b);
}

export interface Piece {
  text: string;
  match: boolean;
}

/** Splits a line around the (case-insensitive) matches of `query`. */
export function highlight(line: string, query: string): Piece[] {
  if (!query) return [{ text: line, match: false }];
  const pieces: Piece[] = [];
  const lower = line.toLowerCase();
  const needle = query.toLowerCase();
  let from = 0;
  for (;;) {
    const at = lower.indexOf(needle, from);
    if (at < 0) break;
    if (at > from) pieces.push({ text: line.slice(from, at), match: false });
    pieces.push({ text: line.slice(at, at + needle.length), match: true });
    from = at + needle.length;
  }
  if (from < line.length) pieces.push({ text: line.slice(from), match: false });
  return pieces;
}

export function countMatches(lines: readonly LogLine[], query: string): number {
  if (!query) return 0;
  return lines.reduce((n, l) => n + (highlight(l.line, query).filter((p) => p.match).length), 0);
}

export function duration(start?: string | null, finish?: string | null, now: number = Date.now()): string {
  if (!start) return "";
  const begin = Date.parse(start);
  const end = finish ? Date.parse(finish) : now;
  const seconds = Math.max(0, (end - begin) / 1000);
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes} min ${Math.round(seconds - minutes * 60)} s`;
}
