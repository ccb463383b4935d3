// The inputs of a zone and of its servers, shared by the create-cluster form, Add zone and
// Add server. Each input's id is made from its path in the request body, and the API's
// findings about that path show right under it.

import type { ReactNode } from "react";
import { fieldId, newServer, type Findings, type ServerForm, type ZoneForm } from "../lib/lifecycle";
import type { Host } from "../lib/types";

/** The attributes that tie an input to its path and to its findings. */
export function fieldProps(path: string, findings: Findings | undefined) {
  const invalid = (findings?.byField[path]?.length ?? 0) > 0;
  return {
    id: fieldId(path),
    "aria-invalid": invalid ? true : undefined,
    "aria-describedby": invalid ? `${fieldId(path)}-error` : undefined,
  };
}

/** The API's findings about one path, next to its input. */
export function FieldErrors({ path, findings }: { path: string; findings: Findings | undefined }) {
  const messages = findings?.byField[path];
  if (!messages || messages.length === 0) return null;
  return (
    <ul className="field-error" id={`${fieldId(path)}-error`} data-field-error={path}>
      {messages.map((message, i) => (
        <li key={i}>{message}</li>
      ))}
    </ul>
  );
}

/** Findings that concern no input, in a list at the top of the form. */
export function GeneralErrors({ summary, findings }: { summary: string | undefined; findings: Findings | undefined }) {
  if (!summary && !findings?.general.length) return null;
  return (
    <div className="error form-errors" role="alert">
      {summary && <p>{summary}</p>}
      {findings && findings.general.length > 0 && (
        <ul>
          {findings.general.map((message, i) => (
            <li key={i}>{message}</li>
          ))}
        </ul>
      )}
    </div>
  );
}

function Labeled({ path, label, findings, children, hint }: { path: string; label: string; findings: Findings | undefined; children: ReactNode; hint?: string }) {
  return (
    <div className="field">
      <label htmlFor={fieldId(path)}>{label}</label>
      {children}
      {hint && <span className="field-hint">{hint}</span>}
      <FieldErrors path={path} findings={findings} />
    </div>
  );
}

export function hostLabel(host: Host): string {
  return host.name && host.name !== host.innerIpAddress ? `${host.name} (${host.innerIpAddress})` : host.innerIpAddress;
}

export function ServersEditor({
  prefix,
  servers,
  hosts,
  observer,
  findings,
  onChange,
  title,
}: {
  prefix: string;
  servers: ServerForm[];
  hosts: readonly Host[];
  observer: boolean;
  findings: Findings | undefined;
  onChange: (servers: ServerForm[]) => void;
  title: string;
}) {
  const set = (index: number, change: Partial<ServerForm>) => onChange(servers.map((s, i) => (i === index ? { ...s, ...change } : s)));
  return (
    <div className="servers-editor" data-field-box={`${prefix}servers`}>
      <FieldErrors path={`${prefix}servers`} findings={findings} />
      {servers.map((server, j) => {
        const at = `${prefix}servers[${j}]`;
        return (
          <fieldset key={server.key} className="server-fields" data-field-box={at}>
            <legend>
              {title} server {j + 1}
            </legend>
            <FieldErrors path={at} findings={findings} />
            <div className="form-grid">
              <Labeled path={`${at}.hostId`} label="Host" findings={findings}>
                <select className="input" {...fieldProps(`${at}.hostId`, findings)} value={server.hostId} onChange={(e) => set(j, { hostId: e.target.value })}>
                  <option value="">Choose a host…</option>
                  {hosts.map((host) => (
                    <option key={host.id} value={String(host.id)}>
                      {hostLabel(host)}
                      {host.status && host.status !== "ONLINE" && host.status !== "AVAILABLE" ? ` — ${host.status}` : ""}
                    </option>
                  ))}
                </select>
              </Labeled>
              <Labeled path={`${at}.sqlPort`} label="SQL port" findings={findings}>
                <input className="input" inputMode="numeric" {...fieldProps(`${at}.sqlPort`, findings)} value={server.sqlPort} onChange={(e) => set(j, { sqlPort: e.target.value })} />
              </Labeled>
              {observer && (
                <Labeled path={`${at}.rpcPort`} label="RPC port" findings={findings}>
                  <input className="input" inputMode="numeric" {...fieldProps(`${at}.rpcPort`, findings)} value={server.rpcPort} onChange={(e) => set(j, { rpcPort: e.target.value })} />
                </Labeled>
              )}
              <Labeled path={`${at}.homePath`} label="Home path" findings={findings}>
                <input
                  className="input"
                  placeholder="/home/admin/oceanbase"
                  autoComplete="off"
                  {...fieldProps(`${at}.homePath`, findings)}
                  value={server.homePath}
                  onChange={(e) => set(j, { homePath: e.target.value })}
                />
              </Labeled>
              <Labeled path={`${at}.parameters`} label="Parameters (optional)" findings={findings} hint="One name=value a line">
                <textarea
                  className="input"
                  rows={2}
                  spellCheck={false}
                  placeholder="memory_limit=8G"
                  {...fieldProps(`${at}.parameters`, findings)}
                  value={server.parameters}
                  onChange={(e) => set(j, { parameters: e.target.value })}
                />
              </Labeled>
            </div>
            {servers.length > 1 && (
              <button type="button" className="button small" onClick={() => onChange(servers.filter((_, i) => i !== j))}>
                Remove server {j + 1} of {title}
              </button>
            )}
          </fieldset>
        );
      })}
      <button
        type="button"
        className="button small"
        onClick={() => {
          const last = servers[servers.length - 1];
          onChange([...servers, newServer(last ? { sqlPort: last.sqlPort, rpcPort: last.rpcPort } : {})]);
        }}
      >
        Add a server to {title}
      </button>
    </div>
  );
}

/** A zone's name, IDC and servers; `prefix` is its path in the body (`zones[0].` or ``). */
export function ZoneEditor({
  prefix,
  zone,
  index,
  hosts,
  observer,
  findings,
  onChange,
  onRemove,
}: {
  prefix: string;
  zone: ZoneForm;
  index: number;
  hosts: readonly Host[];
  observer: boolean;
  findings: Findings | undefined;
  onChange: (zone: ZoneForm) => void;
  onRemove?: () => void;
}) {
  const title = zone.name.trim() || `zone ${index + 1}`;
  return (
    <fieldset className="zone-fields card" data-field-box={prefix ? prefix.slice(0, -1) : "zone"}>
      <legend>{prefix ? `Zone ${index + 1}` : "New zone"}</legend>
      {prefix && <FieldErrors path={prefix.slice(0, -1)} findings={findings} />}
      <div className="form-grid">
        <Labeled path={`${prefix}name`} label="Zone name" findings={findings}>
          <input className="input" autoComplete="off" {...fieldProps(`${prefix}name`, findings)} value={zone.name} onChange={(e) => onChange({ ...zone, name: e.target.value })} />
        </Labeled>
        <Labeled path={`${prefix}idcName`} label="IDC (optional)" findings={findings}>
          <input className="input" autoComplete="off" {...fieldProps(`${prefix}idcName`, findings)} value={zone.idcName} onChange={(e) => onChange({ ...zone, idcName: e.target.value })} />
        </Labeled>
      </div>
      <ServersEditor prefix={prefix} servers={zone.servers} hosts={hosts} observer={observer} findings={findings} onChange={(servers) => onChange({ ...zone, servers })} title={title} />
      {onRemove && (
        <button type="button" className="button small danger-outline" onClick={onRemove}>
          Remove zone {zone.name.trim() || index + 1}
        </button>
      )}
    </fieldset>
  );
}
