// The flow view: stages left to right (longest-path rank), parallel subtasks stacked, Wait
// nodes as thin joins, big parallel groups collapsed into one node with counts. Each node
// is a button: keyboard reachable, status by colour, icon and text.

import { memo, useCallback, useEffect, useMemo, useRef, useState } from "react";
import {
  Controls,
  Handle,
  Position,
  ReactFlow,
  ReactFlowProvider,
  useReactFlow,
  type Edge,
  type Node,
  type NodeProps,
} from "@xyflow/react";
import "@xyflow/react/dist/style.css";
import { layout, type FlowNodeModel, type StageModel } from "../lib/dag";
import type { Subtask } from "../lib/types";
import { statusIcon, tone } from "./Status";

interface Callbacks {
  select: (id: number) => void;
  toggle: (groupKey: string) => void;
}

type TaskNodeData = { model: FlowNodeModel; selected: boolean; callbacks: Callbacks };
type StageNodeData = { stage: StageModel; expanded: ReadonlySet<string>; callbacks: Callbacks };
type TaskFlowNode = Node<TaskNodeData, "task">;
type StageFlowNode = Node<StageNodeData, "stage">;

function nodeTone(status: string): string {
  return status === "RUNNING" ? "busy" : tone(status);
}

function describeCounts(model: FlowNodeModel): string {
  const c = model.counts;
  const parts = [`${c.SUCCESSFUL} done`];
  if (c.RUNNING) parts.push(`${c.RUNNING} running`);
  if (c.CANCELING) parts.push(`${c.CANCELING} canceling`);
  if (c.FAILED) parts.push(`${c.FAILED} failed`);
  if (c.READY + c.PENDING) parts.push(`${c.READY + c.PENDING} pending`);
  return parts.join(", ");
}

const TaskNodeView = memo(function TaskNodeView({ data }: NodeProps<TaskFlowNode>) {
  const { model, selected, callbacks } = data;
  const t = nodeTone(model.status);
  const common = {
    className: `flow-node kind-${model.kind} tone-${t}${selected ? " selected" : ""} nodrag`,
    "data-status": model.status,
    "data-kind": model.kind,
    style: { width: model.width, height: model.height },
  };
  const icon = (
    <span aria-hidden="true" className={t === "busy" ? "spin" : undefined}>
      {statusIcon(model.status)}
    </span>
  );
  let body;
  if (model.kind === "group") {
    body = (
      <button
        type="button"
        {...common}
        aria-expanded={false}
        aria-label={`${model.name} ×${model.ids.length}: ${describeCounts(model)}. Expand`}
        onClick={() => callbacks.toggle(model.groupKey)}
      >
        <span className="flow-title">
          {icon} {model.name}
        </span>
        <span className="flow-sub">
          ×{model.ids.length}: {describeCounts(model)}
        </span>
        <span className="flow-sub">{model.status} · expand</span>
      </button>
    );
  } else if (model.kind === "wait") {
    body = (
      <button
        type="button"
        {...common}
        title={`Wait node #${model.ids[0]}: ${model.status}`}
        aria-label={`Wait node #${model.ids[0]}: ${model.status}`}
        onClick={() => callbacks.select(model.ids[0] as number)}
      >
        {icon}
      </button>
    );
  } else {
    body = (
      <button
        type="button"
        {...common}
        aria-pressed={selected}
        aria-label={`${model.name} #${model.ids[0]}: ${model.status}`}
        onClick={() => callbacks.select(model.ids[0] as number)}
      >
        <span className="flow-title">
          {icon} {model.name}
        </span>
        <span className="flow-sub">
          #{model.ids[0]} · {model.status}
        </span>
      </button>
    );
  }
  return (
    <>
      <Handle type="target" position={Position.Left} className="flow-handle" isConnectable={false} />
      {body}
      <Handle type="source" position={Position.Right} className="flow-handle" isConnectable={false} />
    </>
  );
});

const StageNodeView = memo(function StageNodeView({ data }: NodeProps<StageFlowNode>) {
  const { stage, expanded, callbacks } = data;
  return (
    <div className="flow-stage" style={{ width: Math.max(stage.width, 120) }}>
      <span>
        {stage.done}/{stage.total} done
      </span>
      {stage.collapsible
        .filter((key) => expanded.has(key))
        .map((key) => (
          <button key={key} type="button" className="button small nodrag" onClick={() => callbacks.toggle(key)}>
            Collapse
          </button>
        ))}
    </div>
  );
});

const noop = (): void => undefined;
const NODE_TYPES = { task: TaskNodeView, stage: StageNodeView };

function Flow({ subtasks, selected, onSelect, focus }: FlowProps) {
  const [expanded, setExpanded] = useState<ReadonlySet<string>>(() => new Set());
  const flow = useMemo(() => layout(subtasks, expanded), [subtasks, expanded]);
  const { setCenter, fitView } = useReactFlow();
  const select = useRef(onSelect);
  select.current = onSelect;
  const toggle = useCallback((key: string) => {
    setExpanded((old) => {
      const next = new Set(old);
      if (next.has(key)) next.delete(key);
      else next.add(key);
      return next;
    });
  }, []);
  const callbacks = useMemo<Callbacks>(() => ({ select: (id) => select.current(id), toggle }), [toggle]);
  const selectedKey = useMemo(() => {
    if (selected === undefined) return undefined;
    return flow.nodes.find((n) => n.ids.includes(selected))?.key;
  }, [flow, selected]);

  const nodes = useMemo<Node[]>(() => {
    const waits = new Set(flow.nodes.filter((n) => n.kind === "wait").map((n) => n.rank));
    const stageNodes: StageFlowNode[] = flow.stages.filter((stage) => !waits.has(stage.rank)).map((stage) => ({
      id: `stage:${stage.rank}`,
      type: "stage",
      position: { x: stage.x, y: -48 },
      data: { stage, expanded, callbacks },
      selectable: false,
      focusable: false,
    }));
    const taskNodes: TaskFlowNode[] = flow.nodes.map((model) => ({
      id: model.key,
      type: "task",
      position: { x: model.x, y: model.y },
      data: { model, selected: model.key === selectedKey, callbacks },
      width: model.width,
      height: model.height,
      selectable: false,
      focusable: false,
    }));
    return [...stageNodes, ...taskNodes];
  }, [flow, expanded, callbacks, selectedKey]);

  const edges = useMemo<Edge[]>(
    () =>
      flow.edges.map((edge) => ({
        id: edge.key,
        source: edge.source,
        target: edge.target,
        className: `flow-edge tone-${nodeTone(edge.status)}`,
        selectable: false,
        focusable: false,
      })),
    [flow],
  );

  // "Jump to": centre the node of the failure or of the running step.
  useEffect(() => {
    if (focus === undefined) return;
    const node = flow.nodes.find((n) => n.ids.includes(focus.id));
    if (node) void setCenter(node.x + node.width / 2, node.y + node.height / 2, { zoom: 1, duration: 0 });
    // Only when asked (focus.seq changes), not on every layout.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [focus?.seq]);

  useEffect(() => {
    performance.mark("obpilot:flow-rendered");
  }, []);

  // A new width (a turned phone, a resized window) fits the flow again.
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const element = box.current;
    if (!element) return;
    let width = element.clientWidth;
    const observer = new ResizeObserver(() => {
      if (Math.abs(element.clientWidth - width) < 40) return;
      width = element.clientWidth;
      void fitView({ padding: 0.15, maxZoom: 1 });
    });
    observer.observe(element);
    return () => observer.disconnect();
  }, [fitView]);

  return (
    <div ref={box} className="flow-box">
    <ReactFlow
      nodes={nodes}
      edges={edges}
      nodeTypes={NODE_TYPES}
      nodesDraggable={false}
      nodesConnectable={false}
      elementsSelectable={false}
      nodesFocusable={false}
      edgesFocusable={false}
      onlyRenderVisibleElements
      fitView
      fitViewOptions={{ padding: 0.15, maxZoom: 1 }}
      minZoom={0.05}
      maxZoom={2}
      proOptions={{ hideAttribution: true }}
      colorMode={document.documentElement.dataset.theme === "light" ? "light" : "dark"}
      onInit={() => void fitView({ padding: 0.15, maxZoom: 1 })}
      // A handler gives the nodes pointer events: their buttons take the clicks.
      onNodeClick={noop}
    >
      <Controls showInteractive={false} />
    </ReactFlow>
    </div>
  );
}

interface FlowProps {
  subtasks: readonly Subtask[];
  selected: number | undefined;
  onSelect: (id: number) => void;
  focus: { id: number; seq: number } | undefined;
}

export function FlowView(props: FlowProps) {
  return (
    <div className="flow" role="region" aria-label="Flow view">
      <ReactFlowProvider>
        <Flow {...props} />
      </ReactFlowProvider>
    </div>
  );
}
