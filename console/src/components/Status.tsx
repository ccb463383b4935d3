// Status shown by colour AND by an icon and its text, never by colour alone.

const ICONS: Record<string, string> = {
  SUCCESSFUL: "✓",
  FAILED: "✕",
  RUNNING: "⟳",
  CANCELING: "⊘",
  READY: "◔",
  PENDING: "○",
  STOPPED: "■",
  STOPPING: "⟳",
  STARTING: "⟳",
  RESTARTING: "⟳",
  UNAVAILABLE: "⚠",
  TAKING_OVER: "⟳",
  ONLINE: "●",
  AVAILABLE: "●",
  OFFLINE: "⚠",
  NEW: "○",
};

export function tone(status: string): string {
  switch (status) {
    case "SUCCESSFUL":
    case "RUNNING": // a cluster, zone or server that runs; a running step is "busy" (nodeTone)
    case "ONLINE": // a host
    case "AVAILABLE":
      return "ok";
    case "FAILED":
    case "UNAVAILABLE":
    case "OFFLINE":
      return "bad";
    case "CANCELING":
      return "warn";
    case "PENDING":
    case "READY":
    case "STOPPED":
      return "idle";
    default:
      return status.endsWith("ING") ? "busy" : "idle";
  }
}

/** Subtasks and tasks: RUNNING is work in progress (busy); clusters: RUNNING is healthy. */
export function StatusBadge({ status, kind = "task" }: { status: string; kind?: "task" | "resource" }) {
  const t = kind === "task" && status === "RUNNING" ? "busy" : tone(status);
  const icon = kind === "resource" && status === "RUNNING" ? "●" : (ICONS[status] ?? "•");
  return (
    <span className={`badge tone-${t}`} data-status={status}>
      <span aria-hidden="true" className={t === "busy" ? "spin" : undefined}>
        {icon}
      </span>{" "}
      {status}
    </span>
  );
}

export function statusIcon(status: string): string {
  return ICONS[status] ?? "•";
}
