import { useMemo, useState } from "react";
import { ConfirmDialog, type ConfirmRequest } from "../components/ConfirmDialog";
import { StatusBadge } from "../components/Status";
import { FieldErrors, GeneralErrors, fieldProps } from "../components/ZoneEditor";
import { api, ApiError, describe } from "../lib/api";
import { addHostsBody, fieldId, itemsOf, mapFindings, parseAddresses, type AddHostsForm, type Findings } from "../lib/lifecycle";
import { can } from "../lib/permissions";
import { navigate } from "../lib/router";
import { useFetch } from "../lib/useFetch";
import { useTitle } from "../lib/useTitle";
import type { Credential, Host, HostBatch, HostType, Idc, Me, Page } from "../lib/types";

const KINDS = ["DEDICATED_PHYSICAL_MACHINE", "DEDICATED_CONTAINER", "LOCAL"] as const;
const ADD_FIELDS = ["hostBasicDataList", "sshPort", "kind", "credentialId", "idcId", "typeId"];

function AddHosts({ onCancel }: { onCancel: () => void }) {
  const credentials = useFetch<Page<Credential>>("/api/v2/profiles/me/credentials?size=2000");
  const idcs = useFetch<Page<Idc>>("/api/v2/compute/idcs?size=2000");
  const types = useFetch<Page<HostType>>("/api/v2/compute/hostTypes?size=2000");
  const [form, setForm] = useState<AddHostsForm>({ addresses: "", sshPort: "22", kind: "DEDICATED_PHYSICAL_MACHINE", credentialId: "", idcId: "", typeId: "" });
  const [summary, setSummary] = useState<string>();
  const [findings, setFindings] = useState<Findings>();
  const [busy, setBusy] = useState(false);
  const set = (change: Partial<AddHostsForm>) => setForm({ ...form, ...change });
  const count = parseAddresses(form.addresses).length;

  async function submit(): Promise<void> {
    setBusy(true);
    setSummary(undefined);
    setFindings(undefined);
    try {
      const batch = await api<HostBatch>("/api/v2/compute/hosts/batchCreate", { method: "POST", body: addHostsBody(form) });
      navigate(`/tasks/${batch.id}`);
    } catch (failure) {
      setSummary(describe(failure));
      if (failure instanceof ApiError) setFindings(mapFindings(failure.subErrors, ADD_FIELDS));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form
      className="card lifecycle-form"
      aria-labelledby="add-hosts-title"
      noValidate
      onSubmit={(event) => {
        event.preventDefault();
        if (!busy) void submit();
      }}
    >
      <h2 id="add-hosts-title">Add hosts</h2>
      <GeneralErrors summary={summary ?? credentials.error ?? idcs.error ?? types.error} findings={findings} />
      <div className="form-grid">
        <div className="field span-2">
          <label htmlFor={fieldId("hostBasicDataList")}>Addresses, one a line</label>
          <textarea
            className="input"
            rows={4}
            spellCheck={false}
            placeholder={"10.0.0.11\n10.0.0.12"}
            {...fieldProps("hostBasicDataList", findings)}
            value={form.addresses}
            onChange={(e) => set({ addresses: e.target.value })}
          />
          <span className="field-hint">{count === 1 ? "1 host" : `${count} hosts`}</span>
          <FieldErrors path="hostBasicDataList" findings={findings} />
        </div>
        <div className="field">
          <label htmlFor={fieldId("kind")}>Kind</label>
          <select className="input" {...fieldProps("kind", findings)} value={form.kind} onChange={(e) => set({ kind: e.target.value })}>
            {KINDS.map((kind) => (
              <option key={kind} value={kind}>
                {kind}
              </option>
            ))}
          </select>
          <FieldErrors path="kind" findings={findings} />
        </div>
        <div className="field">
          <label htmlFor={fieldId("sshPort")}>SSH port</label>
          <input className="input" inputMode="numeric" {...fieldProps("sshPort", findings)} value={form.sshPort} onChange={(e) => set({ sshPort: e.target.value })} />
          <FieldErrors path="sshPort" findings={findings} />
        </div>
        <div className="field">
          <label htmlFor={fieldId("credentialId")}>Credential</label>
          <select className="input" {...fieldProps("credentialId", findings)} value={form.credentialId} onChange={(e) => set({ credentialId: e.target.value })}>
            <option value="">{form.kind === "LOCAL" ? "None (this machine)" : "Choose a credential…"}</option>
            {itemsOf(credentials.data).map((credential) => (
              <option key={credential.id} value={String(credential.id)}>
                {credential.name}
              </option>
            ))}
          </select>
          <FieldErrors path="credentialId" findings={findings} />
        </div>
        <div className="field">
          <label htmlFor={fieldId("idcId")}>IDC (optional)</label>
          <select className="input" {...fieldProps("idcId", findings)} value={form.idcId} onChange={(e) => set({ idcId: e.target.value })}>
            <option value="">None</option>
            {itemsOf(idcs.data).map((idc) => (
              <option key={idc.id} value={String(idc.id)}>
                {idc.name}
                {idc.regionName ? ` (${idc.regionName})` : ""}
              </option>
            ))}
          </select>
          <FieldErrors path="idcId" findings={findings} />
        </div>
        <div className="field">
          <label htmlFor={fieldId("typeId")}>Host type (optional)</label>
          <select className="input" {...fieldProps("typeId", findings)} value={form.typeId} onChange={(e) => set({ typeId: e.target.value })}>
            <option value="">None</option>
            {itemsOf(types.data).map((type) => (
              <option key={type.id} value={String(type.id)}>
                {type.name}
              </option>
            ))}
          </select>
          <FieldErrors path="typeId" findings={findings} />
        </div>
      </div>
      <div className="actions form-end">
        <span className="spacer" />
        <button type="button" className="button" onClick={onCancel}>
          Cancel
        </button>
        <button type="submit" className="button primary" disabled={busy}>
          {busy ? "Adding…" : count > 1 ? `Add ${count} hosts` : "Add host"}
        </button>
      </div>
    </form>
  );
}

export function Hosts({ me }: { me: Me }) {
  useTitle("Hosts");
  const canRead = can(me.permissions, "HOST", "*", "READ");
  const { data, error, loading, reload } = useFetch<Page<Host>>(canRead ? "/api/v2/compute/hosts?size=2000" : undefined);
  const hosts = useMemo(() => itemsOf(data), [data]);
  const [adding, setAdding] = useState(false);
  const [dialog, setDialog] = useState<ConfirmRequest>();
  const canCreate = can(me.permissions, "HOST", "*", "CREATE");
  const canDelete = can(me.permissions, "HOST", "*", "DELETE");

  if (!canRead) {
    return (
      <section>
        <h1>Hosts</h1>
        <p className="muted">Hosts need HOST:*:READ.</p>
      </section>
    );
  }

  function askDelete(host: Host): void {
    setDialog({
      title: `Delete host ${host.innerIpAddress}?`,
      action: "Delete host",
      danger: true,
      body: <p>This removes host {host.name || host.innerIpAddress} from obpilot. A host that a cluster's server uses cannot be deleted.</p>,
      run: async () => {
        await api(`/api/v2/compute/hosts/${host.id}`, { method: "DELETE" });
        reload();
        return undefined;
      },
    });
  }

  return (
    <section>
      <div className="page-head">
        <h1>Hosts</h1>
        <div className="actions">
          {canCreate && !adding && (
            <button type="button" className="button primary" onClick={() => setAdding(true)}>
              Add hosts
            </button>
          )}
          <button type="button" className="button" onClick={reload}>
            Refresh
          </button>
        </div>
      </div>
      {adding && <AddHosts onCancel={() => setAdding(false)} />}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {loading && !data && <p className="muted">Loading…</p>}
      {data && hosts.length === 0 && <p className="muted">No host yet.</p>}
      {hosts.length > 0 && (
        <div className="table-wrap">
          <table className="table stack">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Address</th>
                <th scope="col">Status</th>
                <th scope="col">System</th>
                <th scope="col">IDC</th>
                <th scope="col">Type</th>
                {canDelete && <th scope="col">Actions</th>}
              </tr>
            </thead>
            <tbody>
              {hosts.map((host) => (
                <tr key={host.id} data-host={host.id}>
                  <td data-label="Name">{host.name}</td>
                  <td data-label="Address">{host.innerIpAddress}</td>
                  <td data-label="Status">
                    <StatusBadge status={host.status} kind="resource" />
                  </td>
                  <td data-label="System">{[host.operatingSystem, host.architecture].filter(Boolean).join(" ") || "—"}</td>
                  <td data-label="IDC">{host.idcName ?? "—"}</td>
                  <td data-label="Type">{host.typeName ?? "—"}</td>
                  {canDelete && (
                    <td data-label="Actions">
                      <button type="button" className="button small danger-outline" onClick={() => askDelete(host)} data-action="host-delete">
                        Delete
                        <span className="sr-only"> host {host.innerIpAddress}</span>
                      </button>
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {dialog && <ConfirmDialog request={dialog} onClose={() => setDialog(undefined)} />}
    </section>
  );
}
