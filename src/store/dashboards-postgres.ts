import type { PostgresAccess } from './calls-postgres.js';
import { DASHBOARD_COLS, toDashboard } from './dashboard-rows.js';
import type { DashboardRow } from './dashboard-rows.js';
import type { Dashboard, DashboardStore } from './types.js';

/** Dashboards in the PostgreSQL store. */
export class PostgresDashboardStore implements DashboardStore {
  constructor(private readonly db: PostgresAccess) {}

  async create(userId: number, d: { name: string; widgets: unknown[] }, max: number, now: number): Promise<Dashboard | null> {
    return this.db.tx(async (c) => {
      // Nodes creating dashboards for one user at once take turns, so the cap holds across a cluster.
      await this.db.lock(c, `dashboards:${userId}`);
      const { rows: counts } = await c.query<{ n: number }>('SELECT COUNT(*)::int AS n FROM dashboards WHERE user_id = $1', [userId]);
      if (counts[0].n >= max) return null;
      const { rows } = await c.query<DashboardRow>(
        `INSERT INTO dashboards (user_id, name, widgets, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) RETURNING ${DASHBOARD_COLS}`,
        [userId, d.name, JSON.stringify(d.widgets), now],
      );
      return toDashboard(rows[0]);
    });
  }

  async list(userId: number): Promise<Dashboard[]> {
    const { rows } = await this.db.q<DashboardRow>(`SELECT ${DASHBOARD_COLS} FROM dashboards WHERE user_id = $1 ORDER BY id`, [userId], 'iotc_dashboards_list');
    return rows.map(toDashboard);
  }

  async get(userId: number, id: number): Promise<Dashboard | null> {
    const { rows } = await this.db.q<DashboardRow>(`SELECT ${DASHBOARD_COLS} FROM dashboards WHERE user_id = $1 AND id = $2`, [userId, id], 'iotc_dashboard_get');
    return rows[0] ? toDashboard(rows[0]) : null;
  }

  async update(userId: number, id: number, change: { name?: string; widgets?: unknown[] }, now: number): Promise<Dashboard | null> {
    const widgets = change.widgets === undefined ? null : JSON.stringify(change.widgets);
    const { rows } = await this.db.q<DashboardRow>(
      `UPDATE dashboards SET name = COALESCE($1, name), widgets = COALESCE($2, widgets), updated_at = $3 WHERE user_id = $4 AND id = $5 RETURNING ${DASHBOARD_COLS}`,
      [change.name ?? null, widgets, now, userId, id],
    );
    return rows[0] ? toDashboard(rows[0]) : null;
  }

  async delete(userId: number, id: number): Promise<boolean> {
    const { rowCount } = await this.db.q('DELETE FROM dashboards WHERE user_id = $1 AND id = $2', [userId, id]);
    return (rowCount ?? 0) > 0;
  }
}
