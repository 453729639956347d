"""
A stand-in for the original IOTcommunicate Python library (iotcommute), written from the protocol it speaks,
for the hub's compatibility tests. Like the original:
  - WebSocket(device_id, device_key, side, root) connects to ROOT?device=ID&key=KEY&side=SIDE;
  - send_message(sensor, value) sends {"method":"put","status":{"sensor":…,"value":…}} with no id;
  - get_state(sensor) sends {"method":"get","sensor":…};
  - every frame received is parsed and handed to on_tick(tick, ws);
  - an exception in a callback is an error, and an error closes the socket.
"""
import json

import websocket


class WebSocket(object):
    def __init__(self, device_id, device_key, side, root):
        self.url = "%s?device=%s&key=%s&side=%s" % (root, device_id, device_key, side)
        self.on_tick = None
        self.on_connect = None
        self.on_error = None
        self.on_close = None
        self.socket = websocket.WebSocketApp(
            self.url,
            on_open=self._opened,
            on_message=self._message,
            on_error=self._error,
            on_close=self._closed,
        )

    def connect(self):
        self.socket.run_forever()

    def close(self):
        self.socket.close()

    def _opened(self, _ws):
        if self.on_connect:
            self.on_connect(self)

    def _message(self, _ws, data):
        if self.on_tick:
            self.on_tick(json.loads(data), self)

    def _error(self, _ws, error):
        # websocket-client reports an exception raised in a callback here: the original then closes the socket.
        if self.on_error:
            self.on_error(error, self)
        self.socket.close()

    def _closed(self, _ws, *_args):
        if self.on_close:
            self.on_close(self)

    def send_message(self, sensor, value):
        self.socket.send(json.dumps({"method": "put", "status": {"sensor": sensor, "value": value}}))
        return True

    def get_state(self, sensor):
        self.socket.send(json.dumps({"method": "get", "sensor": sensor}))
        return True
