import { useEffect, useState } from "react";
import { AdminClient, AdminApiError } from "../../api/client";
import { Execution, executionKey, isTerminal } from "../../models/execution";
import { formatDuration } from "../../utils/formatDuration";
import { ExecutionStatusBadge } from "./ExecutionStatusBadge";

export interface ExecutionsTableProps {
  client: AdminClient;
  project: string;
  domain: string;
  /** How often to refresh while some execution is still running. */
  pollIntervalMs?: number;
}

type LoadState =
  | { kind: "loading" }
  | { kind: "error"; message: string }
  | { kind: "loaded"; executions: Execution[] };

export function ExecutionsTable({ client, project, domain, pollIntervalMs = 5_000 }: ExecutionsTableProps) {
  const [state, setState] = useState<LoadState>({ kind: "loading" });

  useEffect(() => {
    let cancelled = false;
    let timer: ReturnType<typeof setTimeout> | undefined;

    const load = async () => {
      try {
        const executions = await client.listExecutions(project, domain);
        if (cancelled) return;
        setState({ kind: "loaded", executions });
        // Stop polling once everything has finished: terminal executions never change again.
        if (executions.some((e) => !isTerminal(e.phase))) {
          timer = setTimeout(load, pollIntervalMs);
        }
      } catch (err) {
        if (cancelled) return;
        const message = err instanceof AdminApiError ? `${err.status}: ${err.message}` : String(err);
        setState({ kind: "error", message });
      }
    };

    load();
    return () => {
      cancelled = true;
      clearTimeout(timer);
    };
  }, [client, project, domain, pollIntervalMs]);

  if (state.kind === "loading") {
    return <p className="muted">Loading executions…</p>;
  }
  if (state.kind === "error") {
    return <p className="error">Could not load executions ({state.message}).</p>;
  }
  if (state.executions.length === 0) {
    return <p className="muted">No executions in {project}/{domain} yet.</p>;
  }
  return (
    <table className="executions-table">
      <thead>
        <tr>
          <th>Name</th>
          <th>Launch plan</th>
          <th>Status</th>
          <th>Duration</th>
        </tr>
      </thead>
      <tbody>
        {state.executions.map((execution) => (
          <tr key={executionKey(execution.id)}>
            <td>{execution.id.name}</td>
            <td>{execution.launchPlan}</td>
            <td>
              <ExecutionStatusBadge phase={execution.phase} detail={execution.errorMessage} />
            </td>
            <td>{execution.durationMs === undefined ? "-" : formatDuration(execution.durationMs)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
