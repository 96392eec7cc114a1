import { Execution, ExecutionId, executionKey } from "../models/execution";

export class AdminApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "AdminApiError";
  }
}

/** A thin client for the admin API; every method throws AdminApiError on a non-2xx answer. */
export class AdminClient {
  constructor(
    private readonly baseUrl: string,
    private readonly fetchFn: typeof fetch = fetch,
  ) {}

  async getExecution(id: ExecutionId): Promise<Execution> {
    return this.request<Execution>(`/api/v1/executions/${executionKey(id)}`);
  }

  async listExecutions(project: string, domain: string, limit = 50): Promise<Execution[]> {
    const query = new URLSearchParams({ limit: String(limit) });
    const body = await this.request<{ executions: Execution[] }>(
      `/api/v1/executions/${project}/${domain}?${query}`,
    );
    return body.executions;
  }

  private async request<T>(path: string): Promise<T> {
    const response = await this.fetchFn(`${this.baseUrl}${path}`, {
      headers: { Accept: "application/json" },
    });
    if (!response.ok) {
      // The admin API puts a human-readable reason in {"error": "..."}; surface it to the user.
      const detail = await response.json().catch(() => ({ error: response.statusText }));
      throw new AdminApiError(response.status, detail.error ?? response.statusText);
    }
    return (await response.json()) as T;
  }
}
