/** Phases an execution goes through, as reported by the admin API. */
export enum ExecutionPhase {
  Queued = "QUEUED",
  Running = "RUNNING",
  Succeeded = "SUCCEEDED",
  Failed = "FAILED",
  Aborted = "ABORTED",
}

export interface ExecutionId {
  project: string;
  domain: string;
  name: string;
}

export interface Execution {
  id: ExecutionId;
  launchPlan: string;
  phase: ExecutionPhase;
  /** ISO 8601; absent until the execution starts running. */
  startedAt?: string;
  durationMs?: number;
  errorMessage?: string;
}

export const TERMINAL_PHASES: ReadonlySet<ExecutionPhase> = new Set([
  ExecutionPhase.Succeeded,
  ExecutionPhase.Failed,
  ExecutionPhase.Aborted,
]);

export function isTerminal(phase: ExecutionPhase): boolean {
  return TERMINAL_PHASES.has(phase);
}

export function executionKey(id: ExecutionId): string {
  return `${id.project}/${id.domain}/${id.name}`;
}
