// Which cluster operations the API accepts in which states (inventory/state.py), and why
// the console disables a button.

import type { Task } from "./types";

export type Operation = "stop" | "start" | "restart";

const FROM: Record<Operation, readonly string[]> = {
  stop: ["RUNNING", "UNAVAILABLE"],
  start: ["STOPPED", "UNAVAILABLE"],
  restart: ["RUNNING", "UNAVAILABLE"],
};

export function stateReason(operation: Operation, what: string, status: string): string | undefined {
  if (FROM[operation].includes(status)) return undefined;
  return `${what} is ${status}: ${operation} needs ${FROM[operation].join(" or ")}`;
}

/** The task that holds a cluster's operation lock: a running one, or a failed one (it keeps
 * the lock until it is retried, skipped through or rolled back). */
export function busyReason(latest: Task | undefined): string | undefined {
  if (!latest) return undefined;
  if (latest.status === "RUNNING") return `Task #${latest.id} (${latest.name}) is running`;
  if (latest.status === "FAILED") {
    return `Task #${latest.id} (${latest.name}) failed and holds the cluster: retry, skip or roll it back first`;
  }
  return undefined;
}

export function firstReason(...reasons: (string | undefined)[]): string | undefined {
  return reasons.find((r) => r !== undefined);
}
