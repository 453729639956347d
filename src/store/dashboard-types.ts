/** A page of widgets a user arranged; the widgets are JSON the web app checks (src/core/dashboards.ts). */
export interface Dashboard {
  id: number;
  userId: number;
  name: string;
  widgets: unknown[];
  createdAt: number;
  updatedAt: number;
}

/**
 * Dashboards, always read and written through their owner: another user's dashboard is "none".
 * The contract tests in test/dashboard-store-contract.ts describe it.
 */
export interface DashboardStore {
  /** Stores a new dashboard unless the user already has `max`: then null. */
  create(userId: number, dashboard: { name: string; widgets: unknown[] }, max: number, now: number): Promise<Dashboard | null>;
  /** The user's dashboards, oldest first. */
  list(userId: number): Promise<Dashboard[]>;
  get(userId: number, id: number): Promise<Dashboard | null>;
  /** Replaces the name and/or the widgets; the updated dashboard, or null if the user has no such dashboard. */
  update(userId: number, id: number, change: { name?: string; widgets?: unknown[] }, now: number): Promise<Dashboard | null>;
  delete(userId: number, id: number): Promise<boolean>;
}
