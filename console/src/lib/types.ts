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
