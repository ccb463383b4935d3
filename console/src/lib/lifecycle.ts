// The cluster lifecycle's forms, as pure functions: the form's state, the request body it
// makes (POST /api/v2/ob/clusters, .../zones, .../servers), and where each of the API's
// findings (`subErrors`, whose `field` is a path into that body) shows in the form.

import type { Cluster, Page, SoftwarePackage, SubError } from "./types";

export interface ServerForm {
  key: number;
  hostId: string;
  sqlPort: string;
  rpcPort: string;
  homePath: string;
  /** `name=value` lines. */
  parameters: string;
}

export interface ZoneForm {
  key: number;
  name: string;
  idcName: string;
  servers: ServerForm[];
}

export interface ClusterForm {
  name: string;
  password: string;
  packageId: string;
  zones: ZoneForm[];
  obClusterId: string;
  primaryZone: string;
  /** Made once per form: a double submit answers the same task. */
  clientToken: string;
}

export interface ServerBody {
  hostId: number | string | null;
  sqlPort: number | string | null;
  rpcPort?: number | string | null;
  homePath: string;
  parameters: Record<string, string>;
}

export interface ZoneBody {
  name: string;
  idcName?: string;
  servers: ServerBody[];
}

export interface CreateClusterBody {
  name: string;
  /** Left out while no package is chosen: the API then lists it among its findings. */
  rpmName?: string;
  type: "PRIMARY";
  password: string;
  zones: ZoneBody[];
  obClusterId?: number | string;
  primaryZone?: string;
  clientToken: string;
}

let nextKey = 1;

export function newServer(defaults: Partial<ServerForm> = {}): ServerForm {
  return { key: nextKey++, hostId: "", sqlPort: "2881", rpcPort: "2882", homePath: "", parameters: "", ...defaults };
}

export function newZone(name = "", defaults: Partial<ZoneForm> = {}): ZoneForm {
  return { key: nextKey++, name, idcName: "", servers: [newServer()], ...defaults };
}

/** A token of 128 random bits; crypto.randomUUID exists only in secure contexts, and the
 * console may be served over plain HTTP on a LAN address. */
export function makeClientToken(random: (bytes: Uint8Array) => Uint8Array = (b) => crypto.getRandomValues(b)): string {
  const bytes = random(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function newClusterForm(): ClusterForm {
  return {
    name: "",
    password: "",
    packageId: "",
    zones: [newZone("zone1")],
    obClusterId: "",
    primaryZone: "",
    clientToken: makeClientToken(),
  };
}

/** A package that installs observer (oceanbase-ce) rather than seekdb: its servers have an
 * RPC port. */
export function isObserverPackage(pkg: Pick<SoftwarePackage, "name" | "kind"> | undefined): boolean {
  if (!pkg) return false;
  if (pkg.kind) return pkg.kind === "OCEANBASE_RPM";
  return /^oceanbase(-ce)?$/i.test(pkg.name);
}

/** A number typed in a field: empty is null (the API says it is missing), a number is sent
 * as such, anything else as typed (the API says what is wrong with it). */
export function numberOrText(text: string): number | string | null {
  const trimmed = text.trim();
  if (trimmed === "") return null;
  return /^-?\d+$/.test(trimmed) ? Number(trimmed) : trimmed;
}

/** `name=value` lines (blank lines and `#` comments skipped) and the lines that are not. */
export function parseParameters(text: string): { parameters: Record<string, string>; problems: string[] } {
  const parameters: Record<string, string> = {};
  const problems: string[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const at = line.indexOf("=");
    const name = at < 0 ? "" : line.slice(0, at).trim();
    if (!name) {
      problems.push(`line ${index + 1}: "${line}" is not name=value`);
      return;
    }
    parameters[name] = line.slice(at + 1).trim();
  });
  return { parameters, problems };
}

export function serverBody(server: ServerForm, observer: boolean): ServerBody {
  const body: ServerBody = {
    hostId: numberOrText(server.hostId),
    sqlPort: numberOrText(server.sqlPort),
    homePath: server.homePath.trim(),
    parameters: parseParameters(server.parameters).parameters,
  };
  if (observer) body.rpcPort = numberOrText(server.rpcPort);
  return body;
}

export function zoneBody(zone: ZoneForm, observer: boolean): ZoneBody {
  const body: ZoneBody = { name: zone.name.trim(), servers: zone.servers.map((s) => serverBody(s, observer)) };
  if (zone.idcName.trim()) body.idcName = zone.idcName.trim();
  return body;
}

export function createClusterBody(form: ClusterForm, packages: readonly SoftwarePackage[]): CreateClusterBody {
  const pkg = packages.find((p) => String(p.id) === form.packageId);
  const observer = isObserverPackage(pkg);
  const body: CreateClusterBody = {
    name: form.name.trim(),
    type: "PRIMARY",
    password: form.password,
    zones: form.zones.map((z) => zoneBody(z, observer)),
    clientToken: form.clientToken,
  };
  if (pkg) body.rpmName = pkg.fileName;
  const obClusterId = numberOrText(form.obClusterId);
  if (obClusterId !== null) body.obClusterId = obClusterId;
  if (form.primaryZone.trim()) body.primaryZone = form.primaryZone.trim();
  return body;
}

/** The paths of the inputs of a list of servers under `prefix` (`zones[0].` or ``). */
export function serverFields(prefix: string, servers: readonly ServerForm[], observer: boolean): string[] {
  const fields = [`${prefix}servers`];
  servers.forEach((_, j) => {
    const at = `${prefix}servers[${j}]`;
    fields.push(at, `${at}.hostId`, `${at}.sqlPort`, `${at}.homePath`, `${at}.parameters`);
    if (observer) fields.push(`${at}.rpcPort`);
  });
  return fields;
}

/** The paths of a zone's inputs; `prefix` `zones[0].` in the create form, `` in Add zone. */
export function zoneFields(prefix: string, zone: ZoneForm, observer: boolean): string[] {
  const fields = [`${prefix}name`, `${prefix}idcName`, ...serverFields(prefix, zone.servers, observer)];
  if (prefix.endsWith(".")) fields.push(prefix.slice(0, -1));
  return fields;
}

/** The create form has one package for every zone: a zone's `rpmName` is its select's. */
export function clusterFieldAlias(field: string): string {
  return /^zones\[\d+\]\.rpmName$/.test(field) ? "rpmName" : field;
}

/** Every path of the create form that has an input (or a box: a zone, its servers). */
export function clusterFields(form: ClusterForm, observer: boolean): string[] {
  const fields = ["name", "password", "rpmName", "obClusterId", "primaryZone", "zones"];
  form.zones.forEach((zone, i) => fields.push(...zoneFields(`zones[${i}].`, zone, observer)));
  return fields;
}

/** `body.zones.0.servers.1.sqlPort` -> `zones[0].servers[1].sqlPort`. */
export function normalizeField(field: string): string {
  return field
    .trim()
    .replace(/^body\./, "")
    .replace(/\.(\d+)(?=\.|\[|$)/g, "[$1]");
}

/** The path one level up: `zones[0].servers[1]` -> `zones[0].servers` -> `zones[0]`. */
export function parentField(field: string): string | undefined {
  const match = /^(.*)(\.[^.[\]]+|\[\d+\])$/.exec(field);
  return match ? match[1] : undefined;
}

export interface Findings {
  /** Messages by the path of the input they concern. */
  byField: Record<string, string[]>;
  /** Findings that concern no input of the form: shown in a list at its top. */
  general: string[];
}

/** Where each finding shows: by the input whose path it names, else by the nearest box that
 * holds that path (a zone, its servers), else at the top. */
export function mapFindings(subErrors: readonly SubError[], fields: Iterable<string>, alias: (field: string) => string = (f) => f): Findings {
  const known = new Set(fields);
  const findings: Findings = { byField: {}, general: [] };
  for (const sub of subErrors) {
    const field = alias(normalizeField(sub.field ?? ""));
    let at: string | undefined = field;
    while (at !== undefined && !known.has(at)) at = parentField(at);
    if (at === undefined) {
      findings.general.push(sub.field ? `${sub.field}: ${sub.message}` : sub.message);
    } else if (at === field) {
      (findings.byField[at] ??= []).push(sub.message);
    } else {
      // Shown by a box that holds the path: say which part of it, and what was sent.
      const tail = field.slice(at.length).replace(/^\./, "");
      const value = typeof sub.rejectedValue === "string" || typeof sub.rejectedValue === "number" ? ` (${sub.rejectedValue})` : "";
      (findings.byField[at] ??= []).push(`${tail}${value}: ${sub.message}`);
    }
  }
  return findings;
}

/** The findings the console makes itself before sending: parameter lines that are not
 * `name=value`, for the servers under `prefix` (`zones[0].` or ``). */
export function parameterFindings(prefix: string, servers: readonly ServerForm[]): SubError[] {
  return servers.flatMap((server, j) =>
    parseParameters(server.parameters).problems.map((message) => ({ field: `${prefix}servers[${j}].parameters`, message })),
  );
}

/** A destructive action is enabled once the exact name is typed (no trimming, case counts). */
export function nameConfirmed(typed: string, expected: string): boolean {
  return expected !== "" && typed === expected;
}

/** The delete call of a cluster: obpilot's own (destroyed, or with `keepData` stopped and
 * forgotten with its files kept) or a taken-over one (forgotten, its processes left running). */
export function deleteClusterPath(id: number, how: { forget: true } | { keepData: boolean }): string {
  if ("forget" in how) return `/api/v2/ob/clusters/${id}?keepProcesses=true`;
  return `/api/v2/ob/clusters/${id}?keepData=${how.keepData ? "true" : "false"}`;
}

/** Host addresses typed one per line (commas and spaces separate too), each once. */
export function parseAddresses(text: string): string[] {
  const seen = new Set<string>();
  for (const part of text.split(/[\s,;]+/)) {
    if (part) seen.add(part);
  }
  return [...seen];
}

export interface AddHostsForm {
  addresses: string;
  sshPort: string;
  kind: string;
  credentialId: string;
  idcId: string;
  typeId: string;
}

/** The body of POST /api/v2/compute/hosts/batchCreate. */
export function addHostsBody(form: AddHostsForm) {
  return {
    hostBasicDataList: parseAddresses(form.addresses).map((innerIpAddress) => ({ innerIpAddress })),
    sshPort: numberOrText(form.sshPort),
    kind: form.kind,
    credentialId: numberOrText(form.credentialId),
    idcId: numberOrText(form.idcId),
    typeId: numberOrText(form.typeId),
  };
}

/** A list the API answers as a page (`contents`) or as a plain array. */
export function itemsOf<T>(data: Page<T> | T[] | undefined | null): T[] {
  if (!data) return [];
  return Array.isArray(data) ? data : (data.contents ?? []);
}

export function formatSize(bytes: number | undefined | null): string {
  if (bytes === undefined || bytes === null) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value >= 100 ? 0 : 1)} ${units[unit]}`;
}

/** A DOM id for a field's path: `zones[0].servers[1].sqlPort` -> `f-zones-0-servers-1-sqlPort`. */
export function fieldId(path: string): string {
  return `f-${path.replace(/[^A-Za-z0-9]+/g, "-").replace(/-+$/, "")}`;
}

/** obVersion, and the package's full version beside it when it says more. */
export function versionText(cluster: Pick<Cluster, "obVersion" | "fullVersion">): string {
  const { obVersion, fullVersion } = cluster;
  if (!obVersion) return fullVersion ?? "—";
  return fullVersion && fullVersion !== obVersion ? `${obVersion} (${fullVersion})` : obVersion;
}
