import type Database from 'better-sqlite3';
import { DASHBOARD_COLS, toDashboard } from './dashboard-rows.js';
import type { DashboardRow } from './dashboard-rows.js';
import type { Dashboard, DashboardStore } from './types.js';

/** Dashboards in the SQLite store. Calls are synchronous underneath, so the count-then-insert is atomic. */
export class SqliteDashboardStore implements DashboardStore {
  private readonly stmt;
  private readonly createTx: Database.Transaction<(userId: number, name: string, widgets: string, max: number, now: number) => Dashboard | null>;

  constructor(db: Database.Database) {
    this.stmt = {
      count: db.prepare('SELECT COUNT(*) AS n FROM dashboards WHERE user_id = ?'),
      insert: db.prepare(`INSERT INTO dashboards (user_id, name, widgets, created_at, updated_at) VALUES (?, ?, ?, ?, ?) RETURNING ${DASHBOARD_COLS}`),
      list: db.prepare(`SELECT ${DASHBOARD_COLS} FROM dashboards WHERE user_id = ? ORDER BY id`),
      get: db.prepare(`SELECT ${DASHBOARD_COLS} FROM dashboards WHERE user_id = ? AND id = ?`),
      update: db.prepare(
        `UPDATE dashboards SET name = COALESCE(?, name), widgets = COALESCE(?, widgets), updated_at = ? WHERE user_id = ? AND id = ? RETURNING ${DASHBOARD_COLS}`,
      ),
      delete: db.prepare('DELETE FROM dashboards WHERE user_id = ? AND id = ?'),
    };
    this.createTx = db.transaction((userId, name, widgets, max, now) => {
      if ((this.stmt.count.get(userId) as { n: number }).n >= max) return null;
      return toDashboard(this.stmt.insert.get(userId, name, widgets, now, now) as DashboardRow);
    });
  }

  async create(userId: number, d: { name: string; widgets: unknown[] }, max: number, now: number): Promise<Dashboard | null> {
    return this.createTx.immediate(userId, d.name, JSON.stringify(d.widgets), max, now);
  }

  async list(userId: number): Promise<Dashboard[]> {
    return (this.stmt.list.all(userId) as DashboardRow[]).map(toDashboard);
  }

  async get(userId: number, id: number): Promise<Dashboard | null> {
    const row = this.stmt.get.get(userId, id) as DashboardRow | undefined;
    return row ? toDashboard(row) : null;
  }

  async update(userId: number, id: number, change: { name?: string; widgets?: unknown[] }, now: number): Promise<Dashboard | null> {
    const widgets = change.widgets === undefined ? null : JSON.stringify(change.widgets);
    const row = this.stmt.update.get(change.name ?? null, widgets, now, userId, id) as DashboardRow | undefined;
    return row ? toDashboard(row) : null;
  }

  async delete(userId: number, id: number): Promise<boolean> {
    return this.stmt.delete.run(userId, id).changes > 0;
  }
}
