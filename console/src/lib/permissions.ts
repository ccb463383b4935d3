// OCP permission expressions (iam/permissions.py): RESOURCE:<id|*>:ACTION, nested, or **.
// The console hides what the caller may not do; the API refuses it anyway.

export function covers(grant: string, resource: string, id: string | number, action: string): boolean {
  if (grant === "**") return true;
  const parts = grant.split(":");
  if (parts.length < 3) return false;
  const [gResource, gId] = parts;
  const gAction = parts[parts.length - 1];
  if (gResource !== resource || (gId !== "*" && gId !== String(id))) return false;
  if (parts.length > 3) return false; // a nested grant (CLUSTER:*:TENANT:*:READ) covers its nested resource only
  return gAction === "*" || gAction === action;
}

export function can(permissions: readonly string[], resource: string, id: string | number, action: string): boolean {
  return permissions.some((grant) => covers(grant, resource, id, action));
}
