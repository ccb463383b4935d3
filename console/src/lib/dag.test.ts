import { describe, expect, it } from "vitest";
import { aggregate, COLLAPSE_OVER, emptyCounts, focusTarget, layout, ranks, readingOrder } from "./dag";
import { stopDag } from "./fixtures";

describe("ranks", () => {
  it("puts each subtask in the column of its longest path", () => {
    const dag = stopDag(1, 1);
    expect(dag).toHaveLength(11); // OCP's sample: eleven subtasks for one zone, one server
    const rank = ranks(dag);
    expect(dag.map((s) => rank.get(s.id))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it("takes the longest of several paths", () => {
    const dag = [
      { id: 1, name: "a", status: "PENDING" as const, operation: "EXECUTE", upstreams: [], downstreams: [2, 3] },
      { id: 2, name: "b", status: "PENDING" as const, operation: "EXECUTE", upstreams: [1], downstreams: [3] },
      { id: 3, name: "c", status: "PENDING" as const, operation: "EXECUTE", upstreams: [1, 2], downstreams: [] },
    ];
    expect([...ranks(dag).entries()]).toEqual([
      [1, 0],
      [2, 1],
      [3, 2],
    ]);
  });
});

describe("layout", () => {
  it("lays out stages left to right and stacks parallel subtasks", () => {
    const flow = layout(stopDag(3, 1), new Set());
    expect(flow.stages).toHaveLength(11);
    const zones = flow.nodes.filter((n) => n.name === "Prepare stop OB zone");
    expect(zones).toHaveLength(3);
    expect(new Set(zones.map((n) => n.x)).size).toBe(1);
    expect(new Set(zones.map((n) => n.y)).size).toBe(3);
    const xs = flow.stages.map((s) => s.x);
    expect([...xs].sort((a, b) => a - b)).toEqual(xs);
    const wait = flow.nodes.find((n) => n.kind === "wait");
    expect(wait?.width).toBeLessThan(zones[0]?.width ?? 0);
  });

  it("collapses a big parallel group into one node with its counts, and expands it", () => {
    const dag = stopDag(100, 10);
    expect(dag).toHaveLength(3206);
    dag[500] = { ...(dag[500] as (typeof dag)[number]), status: "FAILED" };
    const flow = layout(dag, new Set());
    expect(flow.nodes.length).toBeLessThan(20);
    const groups = flow.nodes.filter((n) => n.kind === "group");
    expect(groups.map((g) => g.ids.length)).toEqual([100, 1000, 1000, 1000, 100]);
    const failing = groups.find((g) => g.counts.FAILED === 1);
    expect(failing?.status).toBe("FAILED");
    expect(flow.edges.length).toBeLessThan(30);
    const expanded = layout(dag, new Set([failing?.groupKey ?? ""]));
    expect(expanded.nodes.length).toBe(flow.nodes.length - 1 + 1000);
  });

  it("keeps a group of a dozen expanded", () => {
    const flow = layout(stopDag(1, COLLAPSE_OVER), new Set());
    expect(flow.nodes.filter((n) => n.kind === "group")).toHaveLength(0);
  });

  it("colours an edge by its target's status and counts a stage's done subtasks", () => {
    const dag = stopDag(1, 1).map((s) => (s.id <= 2 ? { ...s, status: "SUCCESSFUL" as const } : s));
    dag[2] = { ...(dag[2] as (typeof dag)[number]), status: "RUNNING" };
    const flow = layout(dag, new Set());
    expect(flow.edges.find((e) => e.source === "s:1")?.status).toBe("SUCCESSFUL");
    expect(flow.edges.find((e) => e.source === "s:2")?.status).toBe("RUNNING");
    expect(flow.stages[0]).toMatchObject({ done: 1, total: 1 });
    expect(flow.stages[2]).toMatchObject({ done: 0, total: 1 });
  });
});

describe("focus and order", () => {
  it("jumps to the failure before the running step", () => {
    const dag = stopDag(1, 2);
    dag[3] = { ...(dag[3] as (typeof dag)[number]), status: "RUNNING" };
    expect(focusTarget(dag)?.id).toBe(4);
    dag[5] = { ...(dag[5] as (typeof dag)[number]), status: "FAILED" };
    expect(focusTarget(dag)?.id).toBe(6);
  });

  it("aggregates a group's status by what needs attention", () => {
    const counts = emptyCounts();
    counts.SUCCESSFUL = 5;
    expect(aggregate(counts)).toBe("SUCCESSFUL");
    counts.PENDING = 1;
    expect(aggregate(counts)).toBe("PENDING");
    counts.RUNNING = 1;
    expect(aggregate(counts)).toBe("RUNNING");
  });

  it("orders subtasks column by column", () => {
    const order = readingOrder([...stopDag(2, 1)].reverse()).map((s) => s.name);
    expect(order[0]).toBe("Prepare stop cluster");
    expect(order[order.length - 1]).toBe("Update OB cluster status");
  });
});
