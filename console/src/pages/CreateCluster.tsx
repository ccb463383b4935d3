import { useEffect, useMemo, useState } from "react";
import { Link } from "../components/Link";
import { FieldErrors, GeneralErrors, ZoneEditor, fieldProps } from "../components/ZoneEditor";
import { api, ApiError, describe } from "../lib/api";
import {
  clusterFieldAlias,
  clusterFields,
  createClusterBody,
  fieldId,
  isObserverPackage,
  itemsOf,
  mapFindings,
  newClusterForm,
  newZone,
  parameterFindings,
  type ClusterForm,
  type Findings,
} from "../lib/lifecycle";
import { can } from "../lib/permissions";
import { navigate } from "../lib/router";
import { useFetch } from "../lib/useFetch";
import { useTitle } from "../lib/useTitle";
import type { ClusterTask, Host, Me, Page, SoftwarePackage } from "../lib/types";

export function CreateCluster({ me }: { me: Me }) {
  useTitle("Create cluster");
  const packages = useFetch<Page<SoftwarePackage>>("/api/v2/software-packages?size=2000");
  const hosts = useFetch<Page<Host>>("/api/v2/compute/hosts?size=2000");
  const [form, setForm] = useState<ClusterForm>(newClusterForm);
  const [findings, setFindings] = useState<Findings>();
  const [summary, setSummary] = useState<string>();
  const [busy, setBusy] = useState(false);

  const packageList = useMemo(() => itemsOf(packages.data), [packages.data]);
  const hostList = useMemo(() => itemsOf(hosts.data), [hosts.data]);
  const observer = isObserverPackage(packageList.find((p) => String(p.id) === form.packageId));
  const set = (change: Partial<ClusterForm>) => setForm({ ...form, ...change });

  // After a refusal the first input with a finding takes the focus (the top lists the rest).
  useEffect(() => {
    if (findings) document.querySelector<HTMLElement>('[aria-invalid="true"]')?.focus();
  }, [findings]);

  if (!can(me.permissions, "CLUSTER", "*", "CREATE")) {
    return (
      <section>
        <h1>Create cluster</h1>
        <p className="muted">Creating a cluster needs CLUSTER:*:CREATE.</p>
      </section>
    );
  }

  async function submit(): Promise<void> {
    const fields = clusterFields(form, observer);
    const local = form.zones.flatMap((zone, i) => parameterFindings(`zones[${i}].`, zone.servers));
    if (local.length > 0) {
      setSummary("Some parameters are not name=value lines");
      setFindings(mapFindings(local, fields));
      return;
    }
    setBusy(true);
    setSummary(undefined);
    setFindings(undefined);
    try {
      const task = await api<ClusterTask>("/api/v2/ob/clusters", { method: "POST", body: createClusterBody(form, packageList) });
      navigate(`/tasks/${task.id}`);
    } catch (failure) {
      setSummary(describe(failure));
      if (failure instanceof ApiError) setFindings(mapFindings(failure.subErrors, fields, clusterFieldAlias));
    } finally {
      setBusy(false);
    }
  }

  const zoneNames = form.zones.map((z) => z.name.trim()).filter(Boolean);
  return (
    <section>
      <nav aria-label="Breadcrumb" className="crumbs">
        <Link to="/clusters">Clusters</Link> / <span>Create cluster</span>
      </nav>
      <h1>Create cluster</h1>
      <form
        className="lifecycle-form"
        noValidate
        onSubmit={(event) => {
          event.preventDefault();
          if (!busy) void submit();
        }}
      >
        <GeneralErrors summary={summary} findings={findings} />
        {(packages.error || hosts.error) && (
          <p className="error" role="alert">
            {packages.error ?? hosts.error}
          </p>
        )}
        <div className="card">
          <div className="form-grid">
            <div className="field">
              <label htmlFor={fieldId("name")}>Cluster name</label>
              <input className="input" autoComplete="off" {...fieldProps("name", findings)} value={form.name} onChange={(e) => set({ name: e.target.value })} />
              <span className="field-hint">A letter, then letters, digits or _ (2–48)</span>
              <FieldErrors path="name" findings={findings} />
            </div>
            <div className="field">
              <label htmlFor={fieldId("password")}>Password of root@sys</label>
              <input
                className="input"
                type="password"
                autoComplete="new-password"
                {...fieldProps("password", findings)}
                value={form.password}
                onChange={(e) => set({ password: e.target.value })}
              />
              <FieldErrors path="password" findings={findings} />
            </div>
            <div className="field">
              <label htmlFor={fieldId("rpmName")}>Package</label>
              <select className="input" {...fieldProps("rpmName", findings)} value={form.packageId} onChange={(e) => set({ packageId: e.target.value })}>
                <option value="">{packages.loading ? "Loading…" : "Choose a package…"}</option>
                {packageList.map((pkg) => (
                  <option key={pkg.id} value={String(pkg.id)}>
                    {pkg.fileName} ({pkg.version}, {pkg.architecture})
                  </option>
                ))}
              </select>
              {packages.data && packageList.length === 0 && (
                <span className="field-hint">
                  No package yet: <Link to="/packages">upload one</Link>
                </span>
              )}
              <FieldErrors path="rpmName" findings={findings} />
            </div>
            <div className="field">
              <label htmlFor={fieldId("obClusterId")}>OB cluster id (optional)</label>
              <input className="input" inputMode="numeric" {...fieldProps("obClusterId", findings)} value={form.obClusterId} onChange={(e) => set({ obClusterId: e.target.value })} />
              <FieldErrors path="obClusterId" findings={findings} />
            </div>
            <div className="field">
              <label htmlFor={fieldId("primaryZone")}>Primary zone (optional)</label>
              <select className="input" {...fieldProps("primaryZone", findings)} value={form.primaryZone} onChange={(e) => set({ primaryZone: e.target.value })}>
                <option value="">None</option>
                {zoneNames.map((name) => (
                  <option key={name} value={name}>
                    {name}
                  </option>
                ))}
              </select>
              <FieldErrors path="primaryZone" findings={findings} />
            </div>
          </div>
          {hosts.data && hostList.length === 0 && (
            <p className="notice">
              No host yet: <Link to="/hosts">add hosts</Link> first.
            </p>
          )}
        </div>
        <h2>Zones</h2>
        <FieldErrors path="zones" findings={findings} />
        {form.zones.map((zone, i) => (
          <ZoneEditor
            key={zone.key}
            prefix={`zones[${i}].`}
            zone={zone}
            index={i}
            hosts={hostList}
            observer={observer}
            findings={findings}
            onChange={(changed) => set({ zones: form.zones.map((z, k) => (k === i ? changed : z)) })}
            onRemove={form.zones.length > 1 ? () => set({ zones: form.zones.filter((_, k) => k !== i) }) : undefined}
          />
        ))}
        <div className="actions form-end">
          <button type="button" className="button" onClick={() => set({ zones: [...form.zones, newZone(`zone${form.zones.length + 1}`)] })}>
            Add zone
          </button>
          <span className="spacer" />
          <Link to="/clusters" className="button">
            Cancel
          </Link>
          <button type="submit" className="button primary" disabled={busy}>
            {busy ? "Creating…" : "Create cluster"}
          </button>
        </div>
      </form>
    </section>
  );
}
