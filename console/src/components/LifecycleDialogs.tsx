// Add zone and Add server on the cluster page: a modal form of a zone's (or only its
// servers') inputs, whose submit answers a task; the API's findings show by their inputs.

import { useEffect, useId, useMemo, useRef, useState, type ReactNode } from "react";
import { api, ApiError, describe } from "../lib/api";
import {
  itemsOf,
  mapFindings,
  newServer,
  newZone,
  parameterFindings,
  serverBody,
  serverFields,
  zoneBody,
  zoneFields,
  type Findings,
  type ServerForm,
  type ZoneForm,
} from "../lib/lifecycle";
import { useFetch } from "../lib/useFetch";
import type { Host, Page, SubError, Task } from "../lib/types";
import { GeneralErrors, ServersEditor, ZoneEditor } from "./ZoneEditor";

function FormDialog({
  title,
  action,
  onClose,
  submit,
  children,
  summary,
  findings,
}: {
  title: string;
  action: string;
  onClose: () => void;
  submit: () => Promise<void>;
  children: ReactNode;
  summary: string | undefined;
  findings: Findings | undefined;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [busy, setBusy] = useState(false);
  const titleId = useId();

  useEffect(() => {
    const element = dialog.current;
    if (element && !element.open) element.showModal();
    return () => element?.close();
  }, []);

  return (
    <dialog ref={dialog} className="dialog wide" aria-labelledby={titleId} onClose={onClose} onCancel={onClose}>
      <form
        method="dialog"
        noValidate
        onSubmit={(event) => {
          event.preventDefault();
          if (busy) return;
          setBusy(true);
          void submit().finally(() => setBusy(false));
        }}
      >
        <h2 id={titleId}>{title}</h2>
        <GeneralErrors summary={summary} findings={findings} />
        <div className="dialog-body">{children}</div>
        <div className="dialog-buttons">
          <button type="button" className="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="button primary" disabled={busy}>
            {busy ? "Working…" : action}
          </button>
        </div>
      </form>
    </dialog>
  );
}

/** Sends a lifecycle request; on a refusal, maps its findings onto the form's fields. */
function useSubmit(onTask: (task: Task) => void) {
  const [summary, setSummary] = useState<string>();
  const [findings, setFindings] = useState<Findings>();
  async function send(path: string, body: unknown, fields: string[], local: SubError[]): Promise<void> {
    if (local.length > 0) {
      setSummary("Some parameters are not name=value lines");
      setFindings(mapFindings(local, fields));
      return;
    }
    setSummary(undefined);
    setFindings(undefined);
    try {
      onTask(await api<Task>(path, { method: "POST", body }));
    } catch (failure) {
      setSummary(describe(failure));
      if (failure instanceof ApiError) setFindings(mapFindings(failure.subErrors, fields));
    }
  }
  return { summary, findings, send };
}

function useHosts(): { hosts: Host[]; error: string | undefined } {
  const hosts = useFetch<Page<Host>>("/api/v2/compute/hosts?size=2000");
  return { hosts: useMemo(() => itemsOf(hosts.data), [hosts.data]), error: hosts.error };
}

export function AddZoneDialog({
  clusterId,
  clusterName,
  observer,
  nextName,
  onClose,
  onTask,
}: {
  clusterId: number;
  clusterName: string;
  observer: boolean;
  nextName: string;
  onClose: () => void;
  onTask: (task: Task) => void;
}) {
  const [zone, setZone] = useState<ZoneForm>(() => newZone(nextName));
  const { hosts, error } = useHosts();
  const { summary, findings, send } = useSubmit(onTask);
  return (
    <FormDialog
      title={`Add a zone to cluster ${clusterName}`}
      action="Add zone"
      onClose={onClose}
      summary={summary ?? error}
      findings={findings}
      submit={() => send(`/api/v2/ob/clusters/${clusterId}/zones`, zoneBody(zone, observer), zoneFields("", zone, observer), parameterFindings("", zone.servers))}
    >
      <ZoneEditor prefix="" zone={zone} index={0} hosts={hosts} observer={observer} findings={findings} onChange={setZone} />
    </FormDialog>
  );
}

export function AddServerDialog({
  clusterId,
  zoneName,
  observer,
  onClose,
  onTask,
}: {
  clusterId: number;
  zoneName: string;
  observer: boolean;
  onClose: () => void;
  onTask: (task: Task) => void;
}) {
  const [servers, setServers] = useState<ServerForm[]>(() => [newServer()]);
  const { hosts, error } = useHosts();
  const { summary, findings, send } = useSubmit(onTask);
  return (
    <FormDialog
      title={`Add servers to zone ${zoneName}`}
      action="Add server"
      onClose={onClose}
      summary={summary ?? error}
      findings={findings}
      submit={() =>
        send(
          `/api/v2/ob/clusters/${clusterId}/servers`,
          { zoneName, servers: servers.map((s) => serverBody(s, observer)) },
          serverFields("", servers, observer),
          parameterFindings("", servers),
        )
      }
    >
      <ServersEditor prefix="" servers={servers} hosts={hosts} observer={observer} findings={findings} onChange={setServers} title={zoneName} />
    </FormDialog>
  );
}
