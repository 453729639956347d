/**
 * What a hub on the embedded defaults loads: the optional backends' client libraries (PostgreSQL, NATS, the Home
 * Assistant bridge's MQTT client, the pretty log formatter) only when chosen, so `npm start` on a small machine
 * holds none of their code. Each case runs in a fresh process, as the memory it is about belongs to one.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { ROOT, serviceAvailable } from './helpers.js';
import { createTestDatabase } from './pg-helpers.js';

const OPTIONAL = { pg: '/node_modules/pg/', nats: '/node_modules/@nats-io/', mqttClient: '/node_modules/mqtt/', pinoPretty: '/node_modules/pino-pretty/' };

/**
 * Evaluated before anything else the child imports: counts the `Intl.DateTimeFormat`s made. The first one pages in
 * ICU's data, about 8 MiB of RSS, which a hub without schedules has no use for.
 */
const COUNT_DATE_TIME_FORMATS = `
  globalThis.dateTimeFormats = 0;
  Intl.DateTimeFormat = new Proxy(Intl.DateTimeFormat, {
    construct(target, args, newTarget) { globalThis.dateTimeFormats++; return Reflect.construct(target, args, newTarget); },
    apply(target, self, args) { globalThis.dateTimeFormats++; return Reflect.apply(target, self, args); },
  });
`;

/**
 * Starts a server in a child process with these config overrides (through the CLI's module, so everything the
 * CLI imports is counted) and returns which optional libraries were loaded. Every one of them is CommonJS, so
 * the module cache names them however they were imported; `ws` is the control that it does.
 */
async function loadedBy(overrides: string, format = 'json'): Promise<Record<keyof typeof OPTIONAL | 'ws' | 'dateTimeFormat', boolean>> {
  const script = `
    import ${JSON.stringify(`data:text/javascript,${encodeURIComponent(COUNT_DATE_TIME_FORMATS)}`)};
    import { createRequire } from 'node:module';
    import './src/cli/main.ts';
    import { createLogger } from './src/log.ts';
    import { startServer } from './src/server.ts';
    import { testConfig, tempDir } from './test/helpers.ts';
    const tmp = tempDir();
    const config = testConfig(${overrides}, tmp.dir);
    const server = await startServer(config, createLogger('silent', undefined, '${format}'));
    const loaded = Object.keys(createRequire(import.meta.url).cache);
    await server.close();
    tmp.cleanup();
    const has = (part) => loaded.some((f) => f.replaceAll('\\\\', '/').includes(part));
    console.log(JSON.stringify({ ...Object.fromEntries(Object.entries(${JSON.stringify(OPTIONAL)}).map(([k, v]) => [k, has(v)])), ws: has('/node_modules/ws/'), dateTimeFormat: globalThis.dateTimeFormats > 0 }));
  `;
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, timeout: 60_000 });
  return JSON.parse(stdout.trim().split('\n').pop()!);
}

test('a hub on the defaults (SQLite, in-process bus, JSON logs, no Home Assistant) loads none of the optional backends, nor ICU\'s time zones', async () => {
  const loaded = await loadedBy('{}');
  assert.equal(loaded.ws, true, 'the check sees the libraries a hub does load');
  assert.deepEqual({ ...loaded, ws: undefined }, { pg: false, nats: false, mqttClient: false, pinoPretty: false, ws: undefined, dateTimeFormat: false });
});

test('each optional backend is loaded when it is chosen', async (t) => {
  assert.equal((await loadedBy('{}', 'pretty')).pinoPretty, true, 'pretty logs load the formatter');
  // The bridge connects to a broker in the background; a refused connection only logs, so no broker is needed.
  assert.equal((await loadedBy("{ haBroker: 'mqtt://127.0.0.1:9' }")).mqttClient, true, 'the Home Assistant bridge loads the MQTT client');
  if (await serviceAvailable('PostgreSQL', 5432)) {
    const db = await createTestDatabase();
    try {
      assert.equal((await loadedBy(`{ store: '${db.url()}' }`)).pg, true, 'a PostgreSQL store loads pg');
    } finally {
      await db.drop();
    }
  } else t.diagnostic('PostgreSQL is not running here: its case was skipped');
  if (await serviceAvailable('NATS', 4222)) {
    assert.equal((await loadedBy("{ bus: 'nats://127.0.0.1:4222' }")).nats, true, 'a NATS bus loads the NATS client');
  } else t.diagnostic('NATS is not running here: its case was skipped');
});
