'use strict';
/**
 * Node-RED nodes for IOTcommunicate, on the JavaScript client (iotcommunicate/client):
 *   iotc-hub   a connection to one device, as its app (client side) or as the device itself
 *   iotc in    emits what the other side writes: msg.topic = sensor, msg.payload = value
 *   iotc out   writes msg.payload to the sensor msg.topic (or the node's sensor), acknowledged by the hub
 *   iotc call  calls a method on the device and emits its answer (msg.payload = params in, result out)
 */
module.exports = function (RED) {
  /** One client per hub config node, shared by every node that uses it. */
  function IotcHubNode(config) {
    RED.nodes.createNode(this, config);
    const node = this;
    node.users = new Set();
    node.state = 'connecting';
    node.clientReady = import('iotcommunicate/client').then(({ connect }) => {
      const client = connect({ url: config.url, device: config.device, key: node.credentials.key, side: config.side || 'client' });
      client.on('connected', () => node.setState('connected'));
      client.on('disconnected', (e) => node.setState(e.retryIn === null ? `stopped: ${e.reason || e.code}` : 'reconnecting'));
      client.on('error', (err) => node.warn(`IOTcommunicate: ${err.message}`));
      return client;
    });
    node.clientReady.catch((err) => node.error(`IOTcommunicate client not available: ${err.message}`));
    node.setState = (state) => {
      node.state = state;
      for (const user of node.users) showState(user, state);
    };
    node.on('close', (done) => {
      node.clientReady.then((c) => c.close(), () => {}).finally(done);
    });
  }
  RED.nodes.registerType('iotc-hub', IotcHubNode, { credentials: { key: { type: 'password' } } });

  function showState(node, state) {
    const ok = state === 'connected';
    node.status({ fill: ok ? 'green' : state.startsWith('stopped') ? 'red' : 'yellow', shape: ok ? 'dot' : 'ring', text: state });
  }

  function useHub(node, config) {
    const hub = RED.nodes.getNode(config.hub);
    if (!hub) {
      node.status({ fill: 'red', shape: 'ring', text: 'no hub configured' });
      return null;
    }
    hub.users.add(node);
    showState(node, hub.state);
    node.on('close', () => hub.users.delete(node));
    return hub;
  }

  function IotcInNode(config) {
    RED.nodes.createNode(this, config);
    const node = this;
    const hub = useHub(node, config);
    if (!hub) return;
    let off = null;
    hub.clientReady.then((client) => {
      off = client.on('reading', (r) => {
        if (config.sensor && r.sensor !== config.sensor) return;
        if (r.sync && config.skipSync) return;
        node.send({ topic: r.sensor, payload: r.value, time: r.time, write: r.write, sync: Boolean(r.sync) });
      });
    }, () => {});
    node.on('close', () => {
      if (typeof off === 'function') off();
    });
  }
  RED.nodes.registerType('iotc in', IotcInNode);

  function IotcOutNode(config) {
    RED.nodes.createNode(this, config);
    const node = this;
    const hub = useHub(node, config);
    if (!hub) return;
    node.on('input', (msg, send, done) => {
      const sensor = config.sensor || msg.topic;
      if (typeof sensor !== 'string' || sensor === '') return done(new Error('no sensor: set the node\'s sensor or msg.topic'));
      hub.clientReady
        .then((client) => client.put(sensor, msg.payload))
        .then((ack) => {
          msg.time = ack.time;
          send(msg);
          done();
        }, (err) => done(err));
    });
  }
  RED.nodes.registerType('iotc out', IotcOutNode);

  function IotcCallNode(config) {
    RED.nodes.createNode(this, config);
    const node = this;
    const hub = useHub(node, config);
    if (!hub) return;
    node.on('input', (msg, send, done) => {
      const method = config.method || msg.topic;
      if (typeof method !== 'string' || method === '') return done(new Error('no method: set the node\'s method or msg.topic'));
      const timeout = Number(config.timeout) || undefined;
      hub.clientReady
        .then((client) => client.call(method, msg.payload === undefined ? null : msg.payload, { timeout, persistent: Boolean(config.persistent) }))
        .then((result) => {
          msg.payload = result;
          send(msg);
          done();
        }, (err) => {
          msg.code = err.code;
          done(err);
        });
    });
  }
  RED.nodes.registerType('iotc call', IotcCallNode);
};
