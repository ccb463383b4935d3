// The flow view's layout. Every obpilot DAG is stages of parallel fan-outs between Wait
// nodes, so no general layout library is needed: a subtask's column is its longest-path
// rank (O(V+E)), the subtasks of a column stack, and a large parallel group of one name
// collapses into a single node with its counts.

import type { Subtask, SubtaskStatus } from "./types";

export const COLLAPSE_OVER = 12;
export const NODE_WIDTH = 224;
export const NODE_HEIGHT = 58;
export const WAIT_WIDTH = 18;
export const WAIT_HEIGHT = 72;
export const GROUP_HEIGHT = 92;
export const COLUMN_GAP = 44;
export const ROW_GAP = 12;

export type Counts = Record<SubtaskStatus, number>;

export interface FlowNodeModel {
  key: string;
  kind: "task" | "wait" | "group";
  rank: number;
  groupKey: string;
  name: string;
  ids: number[];
  counts: Counts;
  status: SubtaskStatus;
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface FlowEdgeModel {
  key: string;
  source: string;
  target: string;
  status: SubtaskStatus;
}

export interface StageModel {
  rank: number;
  x: number;
  width: number;
  done: number;
  total: number;
  collapsible: string[]; // group keys of this column that can be collapsed or expanded
}

export interface FlowLayout {
  nodes: FlowNodeModel[];
  edges: FlowEdgeModel[];
  stages: StageModel[];
  width: number;
  height: number;
}

export function emptyCounts(): Counts {
  return { PENDING: 0, READY: 0, RUNNING: 0, CANCELING: 0, FAILED: 0, SUCCESSFUL: 0 };
}

export function isWait(subtask: Pick<Subtask, "name">): boolean {
  return subtask.name.toLowerCase() === "wait node";
}

/** The status a group shows: the one that most needs a person's attention. */
export function aggregate(counts: Counts): SubtaskStatus {
  const order: SubtaskStatus[] = ["FAILED", "CANCELING", "RUNNING", "READY", "PENDING"];
  for (const status of order) if (counts[status] > 0) return status;
  return "SUCCESSFUL";
}

/** Longest-path rank of each subtask (roots are 0); a cycle's members get the rank reached. */
export function ranks(subtasks: readonly Subtask[]): Map<number, number> {
  const known = new Set(subtasks.map((s) => s.id));
  const indegree = new Map<number, number>();
  const rank = new Map<number, number>();
  for (const s of subtasks) {
    indegree.set(s.id, s.upstreams.filter((u) => known.has(u)).length);
    rank.set(s.id, 0);
  }
  const byId = new Map(subtasks.map((s) => [s.id, s]));
  const queue = subtasks.filter((s) => indegree.get(s.id) === 0).map((s) => s.id);
  for (let head = 0; head < queue.length; head++) {
    const id = queue[head] as number;
    const here = rank.get(id) ?? 0;
    for (const down of byId.get(id)?.downstreams ?? []) {
      if (!known.has(down)) continue;
      if ((rank.get(down) ?? 0) < here + 1) rank.set(down, here + 1);
      const left = (indegree.get(down) ?? 0) - 1;
      indegree.set(down, left);
      if (left === 0) queue.push(down);
    }
  }
  return rank;
}

export function layout(subtasks: readonly Subtask[], expanded: ReadonlySet<string>): FlowLayout {
  const rank = ranks(subtasks);
  const columns = new Map<number, Subtask[]>();
  for (const s of [...subtasks].sort((a, b) => a.id - b.id)) {
    const r = rank.get(s.id) ?? 0;
    const column = columns.get(r);
    if (column) column.push(s);
    else columns.set(r, [s]);
  }
  const nodes: FlowNodeModel[] = [];
  const stages: StageModel[] = [];
  const visual = new Map<number, string>();
  const statusOf = new Map<string, SubtaskStatus>();
  const columnNodes: FlowNodeModel[][] = [];
  let x = 0;
  for (const r of [...columns.keys()].sort((a, b) => a - b)) {
    const members = columns.get(r) ?? [];
    const groups = new Map<string, Subtask[]>();
    for (const s of members) {
      const group = groups.get(s.name);
      if (group) group.push(s);
      else groups.set(s.name, [s]);
    }
    const placed: FlowNodeModel[] = [];
    const collapsible: string[] = [];
    let done = 0;
    for (const [name, group] of groups) {
      const groupKey = `g:${r}:${name}`;
      done += group.filter((s) => s.status === "SUCCESSFUL").length;
      if (group.length > COLLAPSE_OVER) collapsible.push(groupKey);
      if (group.length > COLLAPSE_OVER && !expanded.has(groupKey)) {
        const counts = emptyCounts();
        for (const s of group) counts[s.status] += 1;
        for (const s of group) visual.set(s.id, groupKey);
        placed.push({
          key: groupKey,
          kind: "group",
          rank: r,
          groupKey,
          name,
          ids: group.map((s) => s.id),
          counts,
          status: aggregate(counts),
          x: 0,
          y: 0,
          width: NODE_WIDTH,
          height: GROUP_HEIGHT,
        });
        continue;
      }
      for (const s of group) {
        const counts = emptyCounts();
        counts[s.status] = 1;
        const key = `s:${s.id}`;
        visual.set(s.id, key);
        const wait = isWait(s);
        placed.push({
          key,
          kind: wait ? "wait" : "task",
          rank: r,
          groupKey,
          name: s.name,
          ids: [s.id],
          counts,
          status: s.status,
          x: 0,
          y: 0,
          width: wait ? WAIT_WIDTH : NODE_WIDTH,
          height: wait ? WAIT_HEIGHT : NODE_HEIGHT,
        });
      }
    }
    const width = Math.max(...placed.map((n) => n.width));
    for (const n of placed) {
      n.x = x + (width - n.width) / 2;
      statusOf.set(n.key, n.status);
    }
    stages.push({ rank: r, x, width, done, total: members.length, collapsible });
    columnNodes.push(placed);
    x += width + COLUMN_GAP;
  }
  const heights = columnNodes.map(
    (column) => column.reduce((sum, n) => sum + n.height, 0) + ROW_GAP * Math.max(0, column.length - 1),
  );
  const height = Math.max(0, ...heights);
  columnNodes.forEach((column, i) => {
    let y = (height - (heights[i] ?? 0)) / 2;
    for (const n of column) {
      n.y = y;
      y += n.height + ROW_GAP;
      nodes.push(n);
    }
  });
  const edges = new Map<string, FlowEdgeModel>();
  for (const s of subtasks) {
    const source = visual.get(s.id);
    if (source === undefined) continue;
    for (const d of s.downstreams) {
      const target = visual.get(d);
      if (target === undefined || target === source) continue;
      const key = `${source}->${target}`;
      if (!edges.has(key)) edges.set(key, { key, source, target, status: statusOf.get(target) ?? "PENDING" });
    }
  }
  return { nodes, edges: [...edges.values()], stages, width: Math.max(0, x - COLUMN_GAP), height };
}

/** Where "jump to" goes: the failure first, then what runs, then what comes next. */
export function focusTarget(subtasks: readonly Subtask[]): Subtask | undefined {
  const order: SubtaskStatus[] = ["FAILED", "CANCELING", "RUNNING", "READY", "PENDING"];
  for (const status of order) {
    const found = subtasks.find((s) => s.status === status);
    if (found) return found;
  }
  return undefined;
}

/** Subtasks in reading order (column, then top to bottom): what j/k walk through. */
export function readingOrder(subtasks: readonly Subtask[]): Subtask[] {
  const rank = ranks(subtasks);
  return [...subtasks].sort((a, b) => (rank.get(a.id) ?? 0) - (rank.get(b.id) ?? 0) || a.id - b.id);
}
