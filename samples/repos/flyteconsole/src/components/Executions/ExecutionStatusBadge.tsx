import { ExecutionPhase } from "../../models/execution";

const COLORS: Record<ExecutionPhase, string> = {
  [ExecutionPhase.Queued]: "#8a8f98",
  [ExecutionPhase.Running]: "#2f80ed",
  [ExecutionPhase.Succeeded]: "#27ae60",
  [ExecutionPhase.Failed]: "#eb5757",
  [ExecutionPhase.Aborted]: "#f2994a",
};

export interface ExecutionStatusBadgeProps {
  phase: ExecutionPhase;
  /** Shown as a tooltip, e.g. the error message of a failed execution. */
  detail?: string;
}

/** A coloured pill with the phase name, readable without colour thanks to the text. */
export function ExecutionStatusBadge({ phase, detail }: ExecutionStatusBadgeProps) {
  const label = phase.charAt(0) + phase.slice(1).toLowerCase();
  return (
    <span
      className="execution-status-badge"
      title={detail}
      role="status"
      style={{ backgroundColor: COLORS[phase], color: "white", borderRadius: 12, padding: "2px 10px" }}
    >
      {label}
    </span>
  );
}
