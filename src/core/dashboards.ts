import { z } from 'zod';
import { describeIssues, sensorName } from './messages.js';
import { IotcError } from './errors.js';
import type { DeviceAccess } from './device-access.js';
import type { Dashboard, Store } from '../store/types.js';

/** How many dashboards one account may keep, and widgets one dashboard may hold: a hub limit (E_LIMIT). */
export const MAX_DASHBOARDS_PER_USER = 50;
export const MAX_WIDGETS = 60;
/** The grid every dashboard is laid out on: 12 columns; rows as many as the widgets need. */
export const GRID_COLUMNS = 12;
const MAX_ROW = 500;

export const WIDGET_TYPES = ['value', 'gauge', 'chart', 'switch', 'slider', 'button', 'text', 'status', 'image'] as const;
export type WidgetType = (typeof WIDGET_TYPES)[number];
/** Widgets that write to their device: they need canWrite, not just canRead. */
export const CONTROL_TYPES: readonly WidgetType[] = ['switch', 'slider', 'button', 'text'];

const deviceId = z.string({ error: 'device is required' }).regex(/^[A-Z0-9]{20}$/, 'device must be a device id (20 letters A–Z and digits)');
const finite = (name: string) => z.number({ error: `${name} must be a number` }).finite(`${name} must be a finite number`);
/** The ranges a chart widget may show, besides the latest readings: named relative to now, or fixed dates. */
export const RANGE_PRESETS = ['hour', 'day', 'week', 'month', 'year'] as const;
const instant = (name: string) =>
  z.number({ error: `range.${name} must be a time in ms since the epoch` }).int(`range.${name} must be a whole number of ms`).min(0, `range.${name} must be 0 or more`).max(8_640_000_000_000_000, `range.${name} must be before the year 275760`);
const chartRange = z.union(
  [
    z.enum(RANGE_PRESETS),
    z.object({ from: instant('from'), to: instant('to') }).strict().refine((r) => r.from < r.to, { message: 'range.from must be before range.to' }),
  ],
  {
    // Dates given as an object: say what is wrong with them (the union alone would only say neither form fits).
    error: (iss) => {
      if (iss.code !== 'invalid_union') return undefined;
      const dated = typeof iss.input === 'object' && iss.input !== null && !Array.isArray(iss.input);
      const why = dated ? iss.errors[1]?.[0] : undefined;
      return why ? why.message : `range must be one of ${RANGE_PRESETS.join(', ')}, or {"from":…,"to":…} in ms`;
    },
  },
);
const cell = (name: string, max: number) => z.number({ error: `${name} must be a whole number` }).int(`${name} must be a whole number`).min(0, `${name} must be 0 or more`).max(max, `${name} must be at most ${max}`);

export const widgetSchema = z
  .object(
    {
      id: z.string({ error: 'id is required' }).regex(/^[A-Za-z0-9_-]{1,32}$/, 'id must be 1 to 32 letters, digits, _ or -'),
      type: z.enum(WIDGET_TYPES, { error: `type must be one of ${WIDGET_TYPES.join(', ')}` }),
      x: cell('x', GRID_COLUMNS - 1),
      y: cell('y', MAX_ROW),
      w: cell('w', GRID_COLUMNS).min(1, 'w must be at least 1'),
      h: cell('h', 12).min(1, 'h must be at least 1'),
      device: deviceId,
      /** The sensor shown or written; a chart may draw several (`sensors`). */
      sensor: sensorName.optional(),
      sensors: z.array(sensorName).min(1, 'sensors must name at least one sensor').max(8, 'a chart draws at most 8 sensors').optional(),
      title: z.string().max(60, 'title must be at most 60 characters').optional(),
      min: finite('min').optional(),
      max: finite('max').optional(),
      step: finite('step').positive('step must be more than 0').optional(),
      units: z.string().max(16, 'units must be at most 16 characters').optional(),
      /** What a button sends (any JSON up to a small size). */
      payload: z.unknown().optional(),
      /** An image tile's picture when it is not a sensor's binary chunks: a path on this hub (pages load nothing from elsewhere). */
      /** A chart's range: without it, the latest readings (then live). */
      range: chartRange.optional(),
      url: z.string().max(512, 'url must be at most 512 characters').regex(/^\/(?![/\\])[A-Za-z0-9\-._~!$&'()*+,;=:@%/?]*$/, 'url must be a path on this hub, starting with /').optional(),
    },
    { error: (iss) => (iss.code === 'invalid_type' ? 'a widget must be an object' : undefined) },
  )
  .strict()
  .refine((w) => w.x + w.w <= GRID_COLUMNS, { message: `a widget must fit in ${GRID_COLUMNS} columns (x + w ≤ ${GRID_COLUMNS})` })
  .refine((w) => w.min === undefined || w.max === undefined || w.min < w.max, { message: 'min must be less than max' })
  .refine((w) => w.type === 'status' || w.type === 'chart' || (w.type === 'image' && w.url !== undefined) || w.sensor !== undefined, {
    message: 'this widget needs a sensor',
  })
  .refine((w) => w.type !== 'chart' || w.sensor !== undefined || w.sensors !== undefined, { message: 'a chart needs sensor or sensors' })
  .refine((w) => w.range === undefined || w.type === 'chart', { message: 'only a chart has a range' })
  .refine((w) => w.payload === undefined || JSON.stringify(w.payload).length <= 1024, { message: 'payload must be at most 1024 characters of JSON' });
export type Widget = z.infer<typeof widgetSchema>;

const dashboardName = z.string({ error: 'name is required' }).trim().min(1, 'name must not be empty').max(60, 'name must be at most 60 characters');
const widgetList = z.array(widgetSchema, { error: 'widgets must be an array' }).max(MAX_WIDGETS, `a dashboard holds at most ${MAX_WIDGETS} widgets`)
  .refine((ws) => new Set(ws.map((w) => w.id)).size === ws.length, { message: 'widget ids must be unique' });

export const newDashboardInput = z.object({ name: dashboardName, widgets: widgetList.default([]) }, { error: (iss) => (iss.code === 'invalid_type' ? 'the body must be {"name":…,"widgets":[…]}' : undefined) }).strict();
export const dashboardChange = z
  .object({ name: dashboardName.optional(), widgets: widgetList.optional() }, { error: (iss) => (iss.code === 'invalid_type' ? 'the body must be {"name":…} and/or {"widgets":[…]}' : undefined) })
  .strict()
  .refine((c) => c.name !== undefined || c.widgets !== undefined, { message: 'give name and/or widgets' });

function parse<T>(schema: z.ZodType<T>, input: unknown): T {
  const parsed = schema.safeParse(input);
  if (!parsed.success) throw new IotcError('E_VALIDATION', describeIssues(parsed.error));
  return parsed.data;
}

export const dashboardIdOf = (text: unknown): number => {
  const n = typeof text === 'number' ? text : /^\d{1,15}$/.test(String(text)) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < 1) throw new IotcError('E_NOT_FOUND', 'No such dashboard');
  return n;
};

/** A dashboard as the API and the page send it. */
export function dashboardView(d: Dashboard) {
  return { id: d.id, name: d.name, widgets: d.widgets as Widget[], created: d.createdAt, updated: d.updatedAt };
}

/**
 * The owner's dashboards: checked at the edge (zod), each widget's device readable by the user (see
 * device-access.ts) before anything is stored. Another user's dashboard is "not found", never "forbidden".
 */
export class Dashboards {
  constructor(
    private readonly store: Store,
    readonly access: DeviceAccess,
  ) {}

  /**
   * Every device newly named must be readable by the user. One already on the dashboard is let through: a device
   * deleted (or no longer shared) since must not stop its owner rearranging the rest; its widget just shows it gone.
   */
  private async checkDevices(userId: number, widgets: Widget[], already: ReadonlySet<string> = new Set()): Promise<void> {
    for (const id of new Set(widgets.map((w) => w.device))) {
      if (already.has(id)) continue;
      try {
        await this.access.canRead(userId, id);
      } catch (err) {
        if (err instanceof IotcError && err.code === 'E_NOT_FOUND') throw new IotcError('E_VALIDATION', `widgets: there is no device ${id} in your account`);
        throw err;
      }
    }
  }

  list(userId: number): Promise<Dashboard[]> {
    return this.store.dashboards.list(userId);
  }

  async get(userId: number, id: unknown): Promise<Dashboard> {
    const d = await this.store.dashboards.get(userId, dashboardIdOf(id));
    if (!d) throw new IotcError('E_NOT_FOUND', 'No such dashboard');
    return d;
  }

  async create(userId: number, input: unknown): Promise<Dashboard> {
    const body = parse(newDashboardInput, input);
    await this.checkDevices(userId, body.widgets);
    const d = await this.store.dashboards.create(userId, body, MAX_DASHBOARDS_PER_USER, Date.now());
    if (!d) throw new IotcError('E_LIMIT', `An account keeps at most ${MAX_DASHBOARDS_PER_USER} dashboards (a fixed limit of this hub): delete one first`);
    return d;
  }

  async update(userId: number, id: unknown, input: unknown): Promise<Dashboard> {
    const dashboardId = dashboardIdOf(id);
    const change = parse(dashboardChange, input);
    if (change.widgets) {
      const current = await this.store.dashboards.get(userId, dashboardId);
      if (!current) throw new IotcError('E_NOT_FOUND', 'No such dashboard');
      await this.checkDevices(userId, change.widgets, new Set((current.widgets as Widget[]).map((w) => w.device)));
    }
    const d = await this.store.dashboards.update(userId, dashboardId, change, Date.now());
    if (!d) throw new IotcError('E_NOT_FOUND', 'No such dashboard');
    return d;
  }

  async delete(userId: number, id: unknown): Promise<void> {
    if (!(await this.store.dashboards.delete(userId, dashboardIdOf(id)))) throw new IotcError('E_NOT_FOUND', 'No such dashboard');
  }
}
