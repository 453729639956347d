import type { Dashboard } from './types.js';

export const DASHBOARD_COLS = 'id, user_id, name, widgets, created_at, updated_at';

export interface DashboardRow {
  id: number | string;
  user_id: number | string;
  name: string;
  widgets: string;
  created_at: number | string;
  updated_at: number | string;
}

/** PostgreSQL's BIGINT columns arrive as strings; SQLite's as numbers. */
export function toDashboard(row: DashboardRow): Dashboard {
  return {
    id: Number(row.id),
    userId: Number(row.user_id),
    name: row.name,
    widgets: JSON.parse(row.widgets) as unknown[],
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}
