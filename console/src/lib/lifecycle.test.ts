import { describe, expect, it } from "vitest";
import {
  addHostsBody,
  clusterFieldAlias,
  clusterFields,
  createClusterBody,
  deleteClusterPath,
  fieldId,
  formatSize,
  isObserverPackage,
  itemsOf,
  makeClientToken,
  mapFindings,
  nameConfirmed,
  newClusterForm,
  newServer,
  newZone,
  normalizeField,
  parameterFindings,
  parentField,
  parseAddresses,
  parseParameters,
  versionText,
  zoneBody,
  zoneFields,
  type ClusterForm,
} from "./lifecycle";
import type { SoftwarePackage } from "./types";

const SEEKDB: SoftwarePackage = {
  id: 1,
  name: "pylibseekdb",
  fileName: "pylibseekdb-1.0.0-cp311-cp311-manylinux_2_28_x86_64.whl",
  version: "1.0.0",
  architecture: "x86_64",
  type: "OB_SERVER_INSTALL_PACKAGE",
  kind: "SEEKDB_WHEEL",
};
const OCEANBASE: SoftwarePackage = {
  id: 2,
  name: "oceanbase-ce",
  fileName: "oceanbase-ce-4.3.5.1-101000012025.el8.x86_64.rpm",
  version: "4.3.5.1",
  architecture: "x86_64",
  type: "OB_SERVER_INSTALL_PACKAGE",
  kind: "OCEANBASE_RPM",
};

function form(packageId: string): ClusterForm {
  return {
    ...newClusterForm(),
    name: " ob1 ",
    password: "Secret-pass1",
    packageId,
    clientToken: "token-1",
    zones: [
      newZone("zone1", {
        idcName: "",
        servers: [
          newServer({ hostId: "3", sqlPort: "2881", rpcPort: "2882", homePath: " /data/ob1 ", parameters: "memory_limit = 8G\n\n# a comment\ncpu_count=4" }),
          newServer({ hostId: "", sqlPort: "abc", homePath: "/data/ob2" }),
        ],
      }),
      newZone("zone2", { idcName: "hz1", servers: [newServer({ hostId: "4", sqlPort: "2881", homePath: "/data/ob3" })] }),
    ],
  };
}

describe("the create body", () => {
  it("is built from the form: rpmName is the package's file name, no rpcPort for seekdb", () => {
    const body = createClusterBody(form("1"), [SEEKDB, OCEANBASE]);
    expect(body).toEqual({
      name: "ob1",
      rpmName: SEEKDB.fileName,
      type: "PRIMARY",
      password: "Secret-pass1",
      clientToken: "token-1",
      zones: [
        {
          name: "zone1",
          servers: [
            { hostId: 3, sqlPort: 2881, homePath: "/data/ob1", parameters: { memory_limit: "8G", cpu_count: "4" } },
            { hostId: null, sqlPort: "abc", homePath: "/data/ob2", parameters: {} },
          ],
        },
        { name: "zone2", idcName: "hz1", servers: [{ hostId: 4, sqlPort: 2881, homePath: "/data/ob3", parameters: {} }] },
      ],
    });
    expect("obClusterId" in body).toBe(false);
    expect("primaryZone" in body).toBe(false);
  });

  it("sends the RPC port for observer, and the optional fields when given", () => {
    const body = createClusterBody({ ...form("2"), obClusterId: "7", primaryZone: "zone1" }, [SEEKDB, OCEANBASE]);
    expect(body.rpmName).toBe(OCEANBASE.fileName);
    expect(body.zones[0]?.servers[0]?.rpcPort).toBe(2882);
    expect(body.obClusterId).toBe(7);
    expect(body.primaryZone).toBe("zone1");
    expect("rpmName" in createClusterBody(form(""), [SEEKDB])).toBe(false);
  });

  it("keeps one client token per form", () => {
    const one = newClusterForm();
    expect(one.clientToken).toMatch(/^[0-9a-f]{32}$/);
    expect(createClusterBody(one, []).clientToken).toBe(one.clientToken);
    expect(newClusterForm().clientToken).not.toBe(one.clientToken);
    expect(makeClientToken((b) => b.fill(255))).toBe("f".repeat(32));
  });

  it("tells observer packages from seekdb ones", () => {
    expect(isObserverPackage(OCEANBASE)).toBe(true);
    expect(isObserverPackage(SEEKDB)).toBe(false);
    expect(isObserverPackage({ name: "oceanbase-ce", kind: null })).toBe(true);
    expect(isObserverPackage({ name: "seekdb", kind: undefined })).toBe(false);
    expect(isObserverPackage(undefined)).toBe(false);
  });

  it("reads parameters as name=value lines and reports the others by their field", () => {
    expect(parseParameters("a=1\n b = x=y \n\n#c=3")).toEqual({ parameters: { a: "1", b: "x=y" }, problems: [] });
    expect(parseParameters("novalue\n=3").problems).toEqual(['line 1: "novalue" is not name=value', 'line 2: "=3" is not name=value']);
    const zone = newZone("z", { servers: [newServer(), newServer({ parameters: "oops" })] });
    expect(parameterFindings("zones[1].", zone.servers)).toEqual([{ field: "zones[1].servers[1].parameters", message: 'line 1: "oops" is not name=value' }]);
  });

  it("builds the zone of Add zone", () => {
    const zone = newZone("zone4", { idcName: " ", servers: [newServer({ hostId: "9", homePath: "/h" })] });
    expect(zoneBody(zone, true)).toEqual({ name: "zone4", servers: [{ hostId: 9, sqlPort: 2881, rpcPort: 2882, homePath: "/h", parameters: {} }] });
  });
});

describe("findings by field", () => {
  const f = form("1");
  const fields = clusterFields(f, false);

  it("lists the form's inputs by their paths in the body", () => {
    expect(fields).toContain("name");
    expect(fields).toContain("zones[0].servers[1].sqlPort");
    expect(fields).toContain("zones[1].servers[0].homePath");
    expect(fields).not.toContain("zones[0].servers[0].rpcPort");
    expect(clusterFields(f, true)).toContain("zones[0].servers[0].rpcPort");
    expect(zoneFields("", f.zones[0] as never, false)).toContain("servers[1].hostId");
  });

  it("normalizes paths and walks up", () => {
    expect(normalizeField("body.zones.0.servers.1.sqlPort")).toBe("zones[0].servers[1].sqlPort");
    expect(normalizeField("zones[0].name")).toBe("zones[0].name");
    expect(parentField("zones[0].servers[1]")).toBe("zones[0].servers");
    expect(parentField("zones[0].servers")).toBe("zones[0]");
    expect(parentField("zones[0]")).toBe("zones");
    expect(parentField("name")).toBeUndefined();
  });

  it("puts each finding by its input, the unknown ones at the top", () => {
    const findings = mapFindings(
      [
        { object: "body", field: "name", rejectedValue: "1bad", message: "must start with a letter" },
        { field: "zones[0].name", message: "duplicate zone" },
        { field: "zones[0].servers[1].sqlPort", message: "not a port" },
        { field: "zones[1].servers[0].homePath", message: "not absolute" },
        { field: "zones[0].servers[0].hostId", message: "no such host" },
        { field: "password", message: "8 to 32 characters" },
        { field: "zones.1.servers.0.homePath", message: "in use" },
        { field: "zones[0].servers[0].parameters.memory_limit", rejectedValue: "1K", message: "too small" },
        { field: "zones[5].name", message: "no such zone" },
        { field: "type", message: "only PRIMARY" },
        { field: "", message: "the host is unreachable" },
      ],
      fields,
    );
    expect(findings.byField).toEqual({
      name: ["must start with a letter"],
      "zones[0].name": ["duplicate zone"],
      "zones[0].servers[1].sqlPort": ["not a port"],
      "zones[1].servers[0].homePath": ["not absolute", "in use"],
      "zones[0].servers[0].hostId": ["no such host"],
      password: ["8 to 32 characters"],
      "zones[0].servers[0].parameters": ["memory_limit (1K): too small"],
      zones: ["[5].name: no such zone"],
    });
    expect(findings.general).toEqual(["type: only PRIMARY", "the host is unreachable"]);
  });

  it("shows a zone's package finding by the one package select", () => {
    const findings = mapFindings([{ field: "zones[0].rpmName", message: "name the package" }], fields, clusterFieldAlias);
    expect(findings.byField).toEqual({ rpmName: ["name the package"] });
    expect(clusterFieldAlias("zones[0].name")).toBe("zones[0].name");
  });

  it("makes DOM ids from paths", () => {
    expect(fieldId("zones[0].servers[1].sqlPort")).toBe("f-zones-0-servers-1-sqlPort");
    expect(fieldId("name")).toBe("f-name");
  });
});

describe("type-the-name confirmation", () => {
  it("wants the exact name", () => {
    expect(nameConfirmed("demo", "demo")).toBe(true);
    expect(nameConfirmed("", "demo")).toBe(false);
    expect(nameConfirmed("dem", "demo")).toBe(false);
    expect(nameConfirmed("Demo", "demo")).toBe(false);
    expect(nameConfirmed("demo ", "demo")).toBe(false);
    expect(nameConfirmed("", "")).toBe(false);
  });

  it("deletes, keeps the data, or forgets", () => {
    expect(deleteClusterPath(3, { keepData: false })).toBe("/api/v2/ob/clusters/3?keepData=false");
    expect(deleteClusterPath(3, { keepData: true })).toBe("/api/v2/ob/clusters/3?keepData=true");
    expect(deleteClusterPath(3, { forget: true })).toBe("/api/v2/ob/clusters/3?keepProcesses=true");
  });
});

describe("hosts, packages and versions", () => {
  it("reads addresses one a line", () => {
    expect(parseAddresses(" 10.0.0.1\n10.0.0.2, 10.0.0.1\n\n  host-3 ")).toEqual(["10.0.0.1", "10.0.0.2", "host-3"]);
    expect(
      addHostsBody({ addresses: "10.0.0.1\n10.0.0.2", sshPort: "22", kind: "DEDICATED_PHYSICAL_MACHINE", credentialId: "5", idcId: "", typeId: "2" }),
    ).toEqual({
      hostBasicDataList: [{ innerIpAddress: "10.0.0.1" }, { innerIpAddress: "10.0.0.2" }],
      sshPort: 22,
      kind: "DEDICATED_PHYSICAL_MACHINE",
      credentialId: 5,
      idcId: null,
      typeId: 2,
    });
  });

  it("reads pages and plain lists, formats sizes and versions", () => {
    expect(itemsOf({ contents: [1, 2] })).toEqual([1, 2]);
    expect(itemsOf([3])).toEqual([3]);
    expect(itemsOf(undefined)).toEqual([]);
    expect(formatSize(512)).toBe("512 B");
    expect(formatSize(1536)).toBe("1.5 KiB");
    expect(formatSize(300 * 1024 * 1024)).toBe("300 MiB");
    expect(formatSize(undefined)).toBe("—");
    expect(versionText({ obVersion: "4.3.5.1", fullVersion: "4.3.5.1-101000012025" })).toBe("4.3.5.1 (4.3.5.1-101000012025)");
    expect(versionText({ obVersion: "1.0.0", fullVersion: "1.0.0" })).toBe("1.0.0");
    expect(versionText({ obVersion: null, fullVersion: null })).toBe("—");
  });
});
