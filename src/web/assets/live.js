// The pages' live connection: the client side of one device over the hub's WebSocket, authenticated by the login
// cookie, kept open with backoff. The device page and dashboards share it. (The package's JS client in src/client
// wants a device key and a build step; a page has neither, so this stays a plain script.)
'use strict';

(() => {
  /**
   * Opens the client side of `deviceId` and keeps it open. `on.state(state, detail)` hears 'connecting'
   * (detail.again once it has been open or tried before), 'live', and 'off' when retrying is pointless
   * (detail.why: 'deleted' — the device is gone — or 'session' — three refusals in a row, the login ended).
   * `on.frame(msg)` gets every frame that is not the answer to a request: readings and $call updates.
   */
  function live(deviceId, on) {
    let ws = null;
    let nextId = 1;
    let attempts = 0;
    let authFailures = 0;
    const pending = new Map();

    /** Sends a request with an id; resolves with the hub's answer, rejects when there is none. */
    function request(body, timeoutMs = 10000) {
      return new Promise((resolve, reject) => {
        if (!ws || ws.readyState !== WebSocket.OPEN) return reject(new Error('Not connected: reconnecting…'));
        const id = 'w' + nextId++;
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error('No answer from the server'));
        }, timeoutMs);
        pending.set(id, { resolve, reject, timer });
        ws.send(JSON.stringify({ ...body, id }));
      });
    }

    /** Writes as the client side: resolves with the answer once the hub has stored it, else throws its error. */
    async function put(sensor, value) {
      const reply = await request({ method: 'put', status: { sensor, value } });
      if (!reply.ok) throw new Error(reply.error || 'Not sent');
      return reply;
    }

    function open() {
      on.state('connecting', { again: attempts > 0 });
      const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
      ws = new WebSocket(scheme + location.host + '/ws?device=' + encodeURIComponent(deviceId) + '&side=client');
      // The hub completes the handshake even to refuse a connection, so that the page can read why from the close:
      // only an answer proves it accepted. Counting an open as success kept an ended login retrying forever.
      // A socket the hub never answers is dropped, so the retrying goes on rather than waiting on it for good.
      const socket = ws;
      ws.onopen = () => {
        request({ method: 'ping' }).then(
          (reply) => {
            if (!reply.ok) return socket.close();
            attempts = 0;
            authFailures = 0;
            on.state('live', {});
          },
          () => socket.close(),
        );
      };
      ws.onmessage = (event) => {
        let msg;
        try {
          msg = JSON.parse(event.data);
        } catch {
          return;
        }
        if (!('ok' in msg)) return on.frame(msg);
        const p = msg.id !== undefined && pending.get(msg.id);
        if (p) {
          clearTimeout(p.timer);
          pending.delete(msg.id);
          p.resolve(msg);
        }
      };
      ws.onclose = (event) => {
        for (const [id, p] of pending) {
          clearTimeout(p.timer);
          p.reject(new Error('Connection lost'));
          pending.delete(id);
        }
        if (event.code === 4404) return on.state('off', { why: 'deleted' });
        authFailures = event.code === 4401 ? authFailures + 1 : 0;
        if (authFailures >= 3) return on.state('off', { why: 'session' });
        on.state('connecting', { again: true });
        setTimeout(open, Math.min(10000, 500 * 2 ** attempts++));
      };
    }

    open();
    return { request, put };
  }

  window.iotcLive = live;
})();
