// The shapes of obpilot's (OCP's) API that the console reads.

export type SubtaskStatus = "PENDING" | "READY" | "RUNNING" | "CANCELING" | "FAILED" | "SUCCESSFUL";
export type TaskStatus = "RUNNING" | "FAILED" | "SUCCESSFUL";

export interface Subtask {
  id: number;
  name: string;
  status: SubtaskStatus;
  operation: string;
  upstreams: number[];
  downstreams: number[];
  runTime?: number;
  parallelIdx?: number;
  executor?: string | null;
  errorCode?: string | null;
  errorMessage?: string | null;
  startTime?: string | null;
  finishTime?: string | null;
  prohibitRollback?: boolean;
  className?: string;
  description?: string;
  timeout?: number;
}

export interface ClusterRef {
  id: number | null;
  name: string | null;
}

export interface Task {
  id: number;
  name: string;
  status: TaskStatus;
  operation: string;
  clusterId?: number | null;
  cluster?: ClusterRef | null;
  creator?: { id: number; name: string };
  createTime?: string;
  startTime?: string | null;
  finishTime?: string | null;
  prohibitRollback?: boolean;
  subtasks: Subtask[];
}

export interface Server {
  id: number;
  ip: string;
  hostId: number;
  kind: string;
  sqlPort: number;
  port: number | null;
  status: string;
  zoneName: string;
  startTime: string | null;
  stopTime: string | null;
  homePath: string;
}

export interface Zone {
  id: number;
  name: string;
  status: string;
  serverCount: number;
  servers: Server[];
}

export interface Cluster {
  id: number;
  name: string;
  obClusterId: number;
  obVersion: string | null;
  /** The package's full version (`4.3.5.1-101000012025...`), when obpilot knows it. */
  fullVersion?: string | null;
  /** CREATED: obpilot created it (it may destroy it); TAKEN_OVER: it may only forget it. */
  origin?: "CREATED" | "TAKEN_OVER" | string;
  status: string;
  serverCount: number;
  zones: Zone[];
}

export interface Page<T> {
  contents: T[];
  page?: { totalElements: number; totalPages: number; number: number; size: number };
}

export interface Me {
  id: number;
  username: string;
  roles: string[];
  permissions: string[];
}

/** The task a create or delete answers: the task, and the cluster it acts on. */
export interface ClusterTask extends Task {
  clusterId?: number | null;
}

export interface Host {
  id: number;
  name: string;
  innerIpAddress: string;
  status: string;
  operatingSystem?: string | null;
  architecture?: string | null;
  idcName?: string | null;
  typeName?: string | null;
  kind?: string | null;
}

export interface SoftwarePackage {
  id: number;
  name: string;
  fileName: string;
  version: string;
  architecture: string;
  type: string;
  kind?: string | null;
  size?: number;
  sha1?: string;
  buildNumber?: string | null;
  operatingSystem?: string | null;
  deletable?: boolean;
}

export interface Credential {
  id: number;
  name: string;
}

export interface Idc {
  id: number;
  name: string;
  regionName?: string | null;
}

export interface HostType {
  id: number;
  name: string;
}

/** What batchCreate answers: the task (`id`) and the new hosts' ids. */
export interface HostBatch {
  id: number;
  hostIds?: number[];
  contents?: Task[];
}

/** One finding about one field of a request (OCP's `subErrors`). */
export interface SubError {
  object?: string;
  field: string;
  rejectedValue?: unknown;
  message: string;
}
