import { useEffect, useMemo, useRef, useState } from "react";
import { ConfirmDialog, type ConfirmRequest, type DialogOption } from "../components/ConfirmDialog";
import { AddServerDialog, AddZoneDialog } from "../components/LifecycleDialogs";
import { Link } from "../components/Link";
import { StatusBadge } from "../components/Status";
import { api } from "../lib/api";
import { deleteClusterPath, versionText } from "../lib/lifecycle";
import { busyReason, firstReason, stateReason, type Operation } from "../lib/operations";
import { can } from "../lib/permissions";
import { navigate } from "../lib/router";
import { useFetch } from "../lib/useFetch";
import { useTitle } from "../lib/useTitle";
import { useTaskStream } from "../lib/useTaskStream";
import type { Cluster, Me, Page, Server, Task, Zone } from "../lib/types";

const LABEL: Record<Operation, string> = { stop: "Stop", start: "Start", restart: "Restart" };

interface Target {
  kind: "cluster" | "zone" | "server";
  label: string;
  path: string;
  status: string;
}

export function ClusterPage({ id, me }: { id: number; me: Me }) {
  const cluster = useFetch<Cluster>(`/api/v2/ob/clusters/${id}`);
  useTitle(cluster.data ? `Cluster ${cluster.data.name}` : undefined);
  const tasks = useFetch<Page<Task>>(`/api/v2/tasks/instances?clusterId=${id}&size=5&sort=id,desc`);
  const latest = tasks.data?.contents[0];
  const running = latest?.status === "RUNNING" ? latest.id : undefined;
  const stream = useTaskStream(running);
  const [dialog, setDialog] = useState<ConfirmRequest>();
  const [adding, setAdding] = useState<{ kind: "zone" } | { kind: "server"; zoneName: string }>();
  const reloadCluster = cluster.reload;
  const reloadTasks = tasks.reload;

  // The page follows the running task's events: a status step re-reads the cluster (at most
  // once per 300 ms), the task's end re-reads the cluster and its tasks.
  const version = stream.view?.version ?? 0;
  const timer = useRef<number | undefined>(undefined);
  useEffect(() => {
    if (version === 0 || timer.current !== undefined) return;
    timer.current = window.setTimeout(() => {
      timer.current = undefined;
      reloadCluster();
    }, 300);
  }, [version, reloadCluster]);
  useEffect(() => () => window.clearTimeout(timer.current), []);
  const ended = stream.view?.ended ?? false;
  useEffect(() => {
    if (ended) {
      reloadCluster();
      reloadTasks();
    }
  }, [ended, reloadCluster, reloadTasks]);

  const canUpdate = can(me.permissions, "CLUSTER", id, "UPDATE");
  const canDelete = can(me.permissions, "CLUSTER", id, "DELETE");
  const busy = busyReason(stream.view && !stream.view.ended ? stream.view.task : latest);
  const c = cluster.data;
  const observer = useMemo(() => c?.zones.some((z) => z.servers.some((s) => s.kind === "observer")) ?? false, [c]);

  if (cluster.error && !c) {
    return (
      <p className="error" role="alert">
        {cluster.error}
      </p>
    );
  }
  if (!c) return <p className="muted">Loading…</p>;

  function ask(operation: Operation, target: Target): void {
    if (!c) return;
    const options: DialogOption[] = [];
    if (operation !== "start") options.push({ key: "force", label: "Force: SIGKILL at once, no clean stop", initial: false });
    if (operation !== "start" && observer) options.push({ key: "freezeBeforeStop", label: "Minor freeze before stopping", initial: true });
    const takesDown = operation !== "start";
    setDialog({
      title: `${LABEL[operation]} ${target.label}?`,
      action: `${LABEL[operation]} ${target.kind}`,
      danger: takesDown,
      typeToConfirm: takesDown && target.kind === "cluster" ? c.name : undefined,
      body: (
        <p>
          {operation === "stop" && <>This stops every server process of {target.label}: they stop answering SQL until started again.</>}
          {operation === "start" && <>This starts every server process of {target.label} and waits until they answer SQL.</>}
          {operation === "restart" && (
            <>
              This restarts {target.label}
              {target.kind === "cluster" && c.zones.length >= 3 ? ", zone by zone (rolling)" : ""}.
            </>
          )}
        </p>
      ),
      options,
      run: async (chosen) => {
        const body = operation === "start" ? {} : { force: chosen.force ?? false, freezeBeforeStop: chosen.freezeBeforeStop ?? false };
        const task = await api<Task>(`${target.path}/${operation}`, { method: "POST", body });
        reloadTasks();
        reloadCluster();
        return (
          <p>
            Task #{task.id} {task.name} started. <Link to={`/tasks/${task.id}`}>View task</Link>
          </p>
        );
      },
    });
  }

  function actions(target: Target, extra?: string) {
    if (!canUpdate) return null;
    return (
      <div className="actions" role="group" aria-label={`Actions on ${target.label}`}>
        {(["stop", "start", "restart"] as Operation[]).map((operation) => {
          const reason = firstReason(busy, extra, stateReason(operation, target.label, target.status));
          return (
            <button
              key={operation}
              type="button"
              className={`button small ${operation === "start" ? "" : "danger-outline"}`}
              aria-disabled={reason !== undefined}
              title={reason}
              onClick={() => reason === undefined && ask(operation, target)}
              data-action={`${target.kind}-${operation}`}
            >
              {LABEL[operation]}
              {reason && <span className="sr-only"> (unavailable: {reason})</span>}
            </button>
          );
        })}
      </div>
    );
  }

  /** A lifecycle action's button: disabled (and saying why) while a task holds the cluster. */
  function lifecycleButton(action: string, label: string, onClick: () => void, danger = false) {
    return (
      <button
        type="button"
        className={`button small ${danger ? "danger-outline" : ""}`}
        aria-disabled={busy !== undefined}
        title={busy}
        onClick={() => busy === undefined && onClick()}
        data-action={action}
      >
        {label}
        {busy && <span className="sr-only"> (unavailable: {busy})</span>}
      </button>
    );
  }

  function goToTask(task: Task): void {
    navigate(`/tasks/${task.id}`);
  }

  function askDeleteZone(zone: Zone): void {
    if (!c) return;
    setDialog({
      title: `Delete zone ${zone.name}?`,
      action: "Delete zone",
      danger: true,
      body: (
        <p>
          This stops and removes the {zone.servers.length === 1 ? "server" : `${zone.servers.length} servers`} of zone {zone.name} from cluster {c.name}, then
          the zone itself.
        </p>
      ),
      run: async () => {
        goToTask(await api<Task>(`/api/v2/ob/clusters/${c.id}/zones/${encodeURIComponent(zone.name)}`, { method: "DELETE" }));
        return undefined;
      },
    });
  }

  function askDeleteServer(server: Server): void {
    if (!c) return;
    setDialog({
      title: `Delete server ${server.ip}:${server.sqlPort}?`,
      action: "Delete server",
      danger: true,
      body: (
        <p>
          This stops server {server.ip}:{server.sqlPort} of zone {server.zoneName} and removes it from cluster {c.name}.
        </p>
      ),
      run: async () => {
        goToTask(await api<Task>(`/api/v2/ob/clusters/${c.id}/servers/batchDelete`, { method: "POST", body: { servers: [server.id] } }));
        return undefined;
      },
    });
  }

  function askDeleteCluster(): void {
    if (!c) return;
    if (c.origin === "TAKEN_OVER") {
      setDialog({
        title: `Forget cluster ${c.name}?`,
        action: "Forget cluster",
        danger: true,
        typeToConfirm: c.name,
        body: (
          <p>
            obpilot took this cluster over: forgetting it removes it from obpilot only. Its processes keep running and every file stays; it can be taken over
            again.
          </p>
        ),
        run: async () => {
          await api(deleteClusterPath(c.id, { forget: true }), { method: "DELETE" });
          navigate("/clusters");
          return undefined;
        },
      });
      return;
    }
    setDialog({
      title: `Delete cluster ${c.name}?`,
      action: "Delete cluster",
      danger: true,
      typeToConfirm: c.name,
      body: (
        <p>
          This stops every server of cluster {c.name}, removes the cluster from obpilot and deletes its servers&apos; directories. With <em>Keep data</em>{" "}
          the processes are stopped and the cluster forgotten, but every file is kept.
        </p>
      ),
      options: [{ key: "keepData", label: "Keep data (stop and forget, keep every file)", initial: false }],
      run: async (chosen) => {
        goToTask(await api<Task>(deleteClusterPath(c.id, { keepData: chosen.keepData ?? false }), { method: "DELETE" }));
        return undefined;
      },
    });
  }

  const progress = stream.view && !stream.view.ended ? stream.view.task : undefined;
  const done = progress?.subtasks.filter((s) => s.status === "SUCCESSFUL").length ?? 0;
  const total = progress?.subtasks.length ?? 0;
  const clusterTarget: Target = { kind: "cluster", label: `cluster ${c.name}`, path: `/api/v2/ob/clusters/${c.id}`, status: c.status };
  const zoneExtra = c.status === "STOPPED" ? "The cluster is stopped: start the cluster" : undefined;

  return (
    <section>
      <nav aria-label="Breadcrumb" className="crumbs">
        <Link to="/clusters">Clusters</Link> / <span>{c.name}</span>
      </nav>
      <div className="page-head">
        <h1>
          {c.name} <StatusBadge status={c.status} kind="resource" />
        </h1>
        <div className="actions">
          {actions(clusterTarget)}
          {canUpdate && lifecycleButton("cluster-add-zone", "Add zone", () => setAdding({ kind: "zone" }))}
          <button
            type="button"
            className="button small"
            onClick={() => {
              reloadCluster();
              reloadTasks();
            }}
          >
            Refresh
          </button>
          {canDelete &&
            (c.origin === "TAKEN_OVER"
              ? lifecycleButton("cluster-forget", "Forget cluster", askDeleteCluster, true)
              : lifecycleButton("cluster-delete", "Delete cluster", askDeleteCluster, true))}
        </div>
      </div>
      {busy && canUpdate && (
        <p className="notice">
          Actions are disabled: {busy}.{" "}
          {latest && <Link to={`/tasks/${latest.id}`}>Open task #{latest.id}</Link>}
        </p>
      )}
      {!canUpdate && <p className="muted">You may look at this cluster; operations need CLUSTER:{c.id}:UPDATE.</p>}
      {progress && (
        <div className="progress-card card" aria-live="polite">
          <div>
            <Link to={`/tasks/${progress.id}?view=flow`}>
              Task #{progress.id} {progress.name}
            </Link>{" "}
            <StatusBadge status={progress.status} />{" "}
            <span className="muted">
              {done}/{total} steps done
            </span>
          </div>
          <progress max={total} value={done} aria-label={`Task #${progress.id} progress`} />
        </div>
      )}
      <dl className="facts">
        <div>
          <dt>Cluster id</dt>
          <dd>{c.obClusterId}</dd>
        </div>
        <div>
          <dt>Version</dt>
          <dd>{versionText(c)}</dd>
        </div>
        {c.origin && (
          <div>
            <dt>Origin</dt>
            <dd>{c.origin === "TAKEN_OVER" ? "Taken over" : c.origin === "CREATED" ? "Created by obpilot" : c.origin}</dd>
          </div>
        )}
        <div>
          <dt>Zones</dt>
          <dd>{c.zones.length}</dd>
        </div>
        <div>
          <dt>Servers</dt>
          <dd>{c.serverCount}</dd>
        </div>
      </dl>
      {c.zones.map((zone: Zone) => (
        <div className="card zone" key={zone.id}>
          <div className="zone-head">
            <h2>
              {zone.name} <StatusBadge status={zone.status} kind="resource" />
            </h2>
            <div className="actions">
              {actions({ kind: "zone", label: `zone ${zone.name}`, path: `/api/v2/ob/clusters/${c.id}/zones/${encodeURIComponent(zone.name)}`, status: zone.status }, zoneExtra)}
              {canUpdate && (
                <div className="actions" role="group" aria-label={`Change zone ${zone.name}`}>
                  {lifecycleButton("zone-add-server", "Add server", () => setAdding({ kind: "server", zoneName: zone.name }))}
                  {lifecycleButton("zone-delete", "Delete zone", () => askDeleteZone(zone), true)}
                </div>
              )}
            </div>
          </div>
          <div className="table-wrap">
            <table className="table stack">
              <thead>
                <tr>
                  <th scope="col">Server</th>
                  <th scope="col">Status</th>
                  <th scope="col">Kind</th>
                  <th scope="col">Ports</th>
                  <th scope="col">Started</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                {zone.servers.map((server: Server) => (
                  <tr key={server.id} data-server={server.id}>
                    <td data-label="Server">
                      {server.ip}:{server.sqlPort}
                    </td>
                    <td data-label="Status">
                      <StatusBadge status={server.status} kind="resource" />
                    </td>
                    <td data-label="Kind">{server.kind}</td>
                    <td data-label="Ports">
                      SQL {server.sqlPort}
                      {server.port ? `, RPC ${server.port}` : ""}
                    </td>
                    <td data-label="Started">{server.startTime ? new Date(server.startTime).toLocaleString() : "—"}</td>
                    <td data-label="Actions">
                      <div className="actions">
                        {actions(
                          { kind: "server", label: `server ${server.ip}:${server.sqlPort}`, path: `/api/v2/ob/clusters/${c.id}/servers/${server.id}`, status: server.status },
                          zoneExtra,
                        )}
                        {canUpdate && lifecycleButton("server-delete", "Delete server", () => askDeleteServer(server), true)}
                      </div>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </div>
      ))}
      {tasks.data && tasks.data.contents.length > 0 && (
        <div className="card">
          <h2>Recent tasks</h2>
          <ul className="plain">
            {tasks.data.contents.map((task) => (
              <li key={task.id}>
                <Link to={`/tasks/${task.id}`}>
                  #{task.id} {task.name}
                </Link>{" "}
                <StatusBadge status={task.status} />
              </li>
            ))}
          </ul>
          <Link to={`/tasks?clusterId=${c.id}`}>All tasks of {c.name}</Link>
        </div>
      )}
      {dialog && <ConfirmDialog request={dialog} onClose={() => setDialog(undefined)} />}
      {adding?.kind === "zone" && (
        <AddZoneDialog
          clusterId={c.id}
          clusterName={c.name}
          observer={observer}
          nextName={`zone${c.zones.length + 1}`}
          onClose={() => setAdding(undefined)}
          onTask={goToTask}
        />
      )}
      {adding?.kind === "server" && (
        <AddServerDialog clusterId={c.id} zoneName={adding.zoneName} observer={observer} onClose={() => setAdding(undefined)} onTask={goToTask} />
      )}
    </section>
  );
}
