// Test data: obpilot's stop DAG of `zones` x `servers` (the shape of OCP's stop sample).

import type { Subtask, SubtaskStatus } from "./types";

export function stopDag(zones: number, servers: number, status: SubtaskStatus = "PENDING"): Subtask[] {
  const subtasks: Subtask[] = [];
  let next = 1;
  const add = (name: string, upstreams: number[]): number => {
    const id = next++;
    subtasks.push({ id, name, status, operation: "EXECUTE", upstreams, downstreams: [] });
    for (const u of upstreams) subtasks[u - 1]?.downstreams.push(id);
    return id;
  };
  const first = add("Prepare stop cluster", []);
  const zoneIds = Array.from({ length: zones }, () => add("Prepare stop OB zone", [first]));
  let wait = add("Wait node", zoneIds);
  for (const name of ["Prepare stop observer", "Stop observer process", "Update observer status"]) {
    const ids = Array.from({ length: zones * servers }, () => add(name, [wait]));
    wait = add("Wait node", ids);
  }
  const zoneUpdates = Array.from({ length: zones }, () => add("Update zone status", [wait]));
  add("Update OB cluster status", zoneUpdates);
  return subtasks;
}
