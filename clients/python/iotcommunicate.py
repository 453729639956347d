"""
IOTcommunicate client for Python (websocket-client).

Its API is a superset of the original ``iotcommute`` library, so a script written for it runs after changing
one import::

    from iotcommunicate import WebSocket      # was: from iotcommute import WebSocket

    ws = WebSocket("DEVICE_ID", "DEVICE_KEY", "device", "ws://HOST:8888/ws")
    ws.on_connect = lambda ws: ws.send_message("temp", 21.5)
    ws.on_tick = lambda tick, ws: print(tick["sensor"], tick["value"])
    ws.connect()                                # blocks; connect(threaded=True) runs in the background

On top of that: it reconnects with a jittered, capped backoff (the server restarted, Wi-Fi came back), keeps
puts made while disconnected in a bounded queue, waits for durable acknowledgements (``put``), reads values
back (``get``, ``history``, ``sensors``), sends commands to the device (``call``) and answers them on the
device (``on_call``). Failures raise ``IotcError`` carrying the hub's error code (``E_AUTH``, ``E_TIMEOUT`` …).

Callbacks run on one dispatcher thread of their own, in order, so they may call the blocking methods.
"""

import collections
import json
import queue
import random
import socket
import ssl
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import websocket

__all__ = ["WebSocket", "IotcError"]

# Close codes after which trying again cannot help: malformed URL, wrong id or key (or rotated), device deleted.
FATAL_CLOSE_CODES = {4400: "E_VALIDATION", 4401: "E_AUTH", 4404: "E_DEVICE_DELETED"}
_HELLO = "hello"


class IotcError(Exception):
    """An error of the hub's catalogue: ``code`` (e.g. "E_NOT_FOUND"), ``message``, and ``call`` for commands."""

    def __init__(self, code, message, call=None):
        super().__init__("%s [%s]" % (message, code))
        self.code = code
        self.message = message
        self.call = call


def socket_url(root, device_id, device_key, side):
    """ws(s)://HOST:PORT/ws?device=…&key=…&side=… from a root given with or without /ws, as http(s) or ws(s)."""
    text = root or "ws://127.0.0.1:8888/ws"
    if "://" not in text:
        text = "ws://" + text
    parts = urlsplit(text)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss"):
        raise IotcError("E_VALIDATION", "%r is not a WebSocket URL: use ws://, wss://, http:// or https://" % root)
    path = parts.path.rstrip("/")
    if not path.endswith("/ws"):
        path += "/ws"
    query = dict(parse_qsl(parts.query))
    query.update({k: v for k, v in (("device", device_id), ("key", device_key), ("side", side)) if v})
    query.setdefault("side", "device")
    if not query.get("device") or not query.get("key"):
        raise IotcError("E_VALIDATION", "Give the device id and key")
    return urlunsplit((scheme, parts.netloc, path, urlencode(query), ""))


def _blob_frame(message, id_):
    """A binary frame for put_blob: its header's length in one byte, the JSON header with the id, the bytes."""
    head = json.dumps({"sensor": message["sensor"], "type": message["type"], "id": id_}, separators=(",", ":")).encode("utf-8")
    if len(head) > 255:
        raise IotcError("E_VALIDATION", "The sensor name and type are too long for a binary frame header")
    return bytes(bytearray([len(head)])) + head + message["bytes"]


class _Pending(object):
    __slots__ = ("id", "kind", "message", "future", "sent", "queued", "to_tick", "report")

    def __init__(self, id_, kind, message, to_tick, report):
        self.id = id_
        self.kind = kind
        self.message = message
        self.future = Future()
        self.sent = False
        self.queued = False  # in the outbox, waiting for the pacer
        # get_state: the answer goes to on_tick. send_message & co: nobody waits, so a failure goes to on_error.
        self.to_tick = to_tick
        self.report = report


class WebSocket(object):
    """One side (``"device"`` or ``"client"``) of one device, connected to an IOTcommunicate hub."""

    # Kept from the original library; RECONNECT_* now bound the backoff (seconds, tries; 0 tries = forever).
    READ_TIMEOUT = 10
    RECONNECT_INTERVAL = 0.5
    RECONNECT_MAX_INTERVAL = 30
    RECONNECT_TRIES = 0
    QUEUE_LIMIT = 1000
    PING_INTERVAL = 25
    # Messages per second sent at most, and the burst sent at once: half the hub's default rate limit, so a long
    # offline queue is flushed at a pace the hub accepts.
    MAX_RATE = 100
    MAX_BURST = 200

    def __init__(self, device_id, device_key, side="device", root=None, reconnect=True, binary=False):
        self.socket_url = socket_url(root, device_id, device_key, side)
        if binary:
            # Binary chunks of the other side arrive as on_blob calls instead of JSON notices.
            self.socket_url += "&binary=1"
        self.side = dict(parse_qsl(urlsplit(self.socket_url).query))["side"]
        self.auto_reconnect = reconnect
        # The original library's callbacks, same signatures.
        self.on_tick = None  # on_tick(tick, ws): every reading (dict with sensor, value, time, write) and get_state answer
        self.on_message = None  # on_message(text, ws): every frame as received
        self.on_close = None  # on_close(ws): a connection closed
        self.on_error = None  # on_error(error, ws): an IotcError or a connection error
        self.on_connect = None  # on_connect(ws): the hub accepted the connection (again after a reconnect)
        self.on_reconnect = None  # on_reconnect(ws, attempt, delay): about to try again in `delay` seconds
        self.on_noreconnect = None  # on_noreconnect(ws): giving up (wrong key, device deleted, tries exhausted)
        self.on_call_state = None  # on_call_state(state, ws): a persistent call's new state, pushed to the app
        # on_blob(blob, ws): a binary chunk from the other side, a dict with sensor, type, data (bytes), size, time,
        # write, seq; given with binary=True, or once this client sent a chunk itself (put_blob)
        self.on_blob = None
        self.socket = None
        self._handlers = {}
        self._pending = {}
        self._lock = threading.RLock()
        self._next_id = 1
        self._accepted = threading.Event()
        self._stopped = threading.Event()
        self._last_refusal = None
        self._held = []  # readings that came before the hub's answer to the first ping: on_connect goes first
        self._fatal = None
        self._callbacks = queue.Queue()
        self._outbox = collections.deque()
        self._outbox_ready = threading.Condition(self._lock)
        self._recv_thread = None
        self.websocket_thread = None
        threading.Thread(target=self._dispatch, name="iotcommunicate-callbacks", daemon=True).start()
        threading.Thread(target=self._send_loop, name="iotcommunicate-sender", daemon=True).start()

    # ---- the original library's API -------------------------------------------------------------------------

    def connect(self, threaded=False, disable_ssl_verification=False, proxy=None):
        """Connects and stays connected until close(); blocks unless ``threaded``. Returns self."""
        kwargs = {"ping_interval": self.PING_INTERVAL, "ping_timeout": 10}
        if proxy and proxy.get("host"):
            kwargs.update(http_proxy_host=proxy["host"], http_proxy_port=proxy.get("port", 80), http_proxy_auth=proxy.get("auth"))
        if disable_ssl_verification:
            kwargs["sslopt"] = {"cert_reqs": ssl.CERT_NONE}
        self._stopped.clear()
        if threaded:
            self.websocket_thread = threading.Thread(target=self._run, args=(kwargs,), name="iotcommunicate-socket", daemon=True)
            self.websocket_thread.start()
        else:
            self._run(kwargs)
        return self

    def is_connected(self):
        """Whether the hub has accepted the current connection."""
        return self._accepted.is_set()

    def reconnect(self):
        """Drops the current connection; the client connects again shortly."""
        self._drop()
        return True

    def close(self):
        """Closes for good: no reconnecting; what still waits fails with E_UNAVAILABLE."""
        self._stopped.set()
        self._drop()
        self._fail_all(IotcError("E_UNAVAILABLE", "The client was closed"))

    def send_message(self, sensor, value):
        """Writes a value without waiting (as the original); it is queued while disconnected. Returns True."""
        self._enqueue("put", {"method": "put", "status": {"sensor": sensor, "value": value}}, report=True)
        return True

    def send_payload(self, payload):
        """Writes ``payload`` ({"sensor":…,"value":…} or a list of them) without waiting. Returns True."""
        self._enqueue("put", {"method": "put", "status": payload}, report=True)
        return True

    def get_state(self, sensor):
        """Asks for the latest value of ``sensor``; it arrives through on_tick, as in the original. Returns True."""
        self._enqueue("request", {"method": "gets", "sensor": sensor}, to_tick=True, report=True)
        return True

    # ---- acknowledged writes, reads and commands ------------------------------------------------------------

    def put(self, sensor, value=None, timeout=None):
        """Writes and waits until the hub has durably stored it; returns the ack ({"time": ms}). Raises IotcError."""
        return self._wait(self.put_async(sensor, value), timeout, None)

    def put_async(self, sensor, value=None):
        """Writes; returns a concurrent.futures.Future resolved with the ack. ``sensor`` may be a list of readings."""
        status = sensor if isinstance(sensor, list) else {"sensor": sensor, "value": value}
        if not self.is_connected():
            with self._lock:
                queued = sum(1 for p in self._pending.values() if p.kind == "put")
            if queued >= self.QUEUE_LIMIT:
                future = Future()
                future.set_exception(IotcError("E_LIMIT", "Offline queue full: %d puts wait for the connection (QUEUE_LIMIT)" % self.QUEUE_LIMIT))
                return future
        return self._enqueue("put", {"method": "put", "status": status})

    def put_blob(self, sensor, data, content_type="application/octet-stream", timeout=None):
        """Sends a binary chunk (a camera frame, a file; at most the hub's --max-blob, 256 KiB by default), relayed
        byte-exact to the other side; waits until stored and returns the ack ({"seq", "size", "time"})."""
        return self._wait(self.put_blob_async(sensor, data, content_type), timeout, None)

    def put_blob_async(self, sensor, data, content_type="application/octet-stream"):
        """Sends a binary chunk; returns a Future resolved with the ack."""
        message = {"method": "blob", "sensor": sensor, "type": content_type, "bytes": bytes(data)}
        try:
            _blob_frame(dict(message, bytes=b""), 0)
        except IotcError as err:
            future = Future()
            future.set_exception(err)
            return future
        return self._enqueue("put", message)

    def get(self, sensor, write=None, timeout=None):
        """The latest reading of ``sensor`` as a dict, or None if it has none."""
        try:
            return self._reading(self.request(dict({"method": "gets", "sensor": sensor}, **self._side(write)), timeout))
        except IotcError as err:
            if err.code == "E_NOT_FOUND":
                return None
            raise

    def history(self, sensor, limit=100, from_=None, to=None, write=None, timeout=None):
        """Past readings of ``sensor``, oldest first (times in ms since the epoch or ISO 8601 strings)."""
        message = dict({"method": "history", "sensor": sensor, "limit": limit}, **self._side(write))
        if from_ is not None:
            message["from"] = from_
        if to is not None:
            message["to"] = to
        return [self._reading(r) for r in self.request(message, timeout)["readings"]]

    def sensors(self, write=None, timeout=None):
        """The latest reading of every sensor."""
        return [self._reading(r) for r in self.request(dict({"method": "sensors"}, **self._side(write)), timeout)["sensors"]]

    def call(self, method, params=None, timeout=10.0, persistent=False):
        """
        Sends a command to the device and returns its answer. Raises IotcError: E_TIMEOUT, E_OFFLINE, or E_DEVICE
        with the device's message. A persistent call returns its state at once ({"call", "state"}); see call_status.
        """
        message = {"method": "call", "device_method": method, "params": params, "persistent": bool(persistent)}
        if timeout is not None:
            message["timeout"] = int(timeout * 1000)
        wait = self.READ_TIMEOUT + (0 if persistent else (timeout or 10.0))
        body = self._wait(self._enqueue("call", message), wait, "call")
        if persistent:
            return {k: v for k, v in body.items() if k not in ("ok", "id")}
        return body.get("result")

    def call_status(self, call_id, timeout=None):
        """A persistent call's state: {"call", "state", "result"?, "error"?}."""
        body = self.request({"method": "call_status", "call": call_id}, timeout)
        return {k: v for k, v in body.items() if k not in ("ok", "id")}

    def on_call(self, method, handler=None):
        """
        Answers calls of ``method`` on the device side with ``handler(params)``'s return value; an exception's
        message is sent as the error. ``"*"`` handles every method without its own handler. Usable as a decorator.
        """
        if handler is None:
            return lambda fn: self.on_call(method, fn) or fn
        self._handlers[method] = handler
        return handler

    def request(self, message, timeout=None):
        """Sends any request of the protocol and returns the hub's reply (a dict). Raises IotcError."""
        return self._wait(self._enqueue("request", dict(message)), timeout, message.get("method"))

    def wait_connected(self, timeout=None):
        """Waits until the hub accepts the connection; raises IotcError if it refuses or the time runs out."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._accepted.wait(0.05):
            if self._fatal is not None:
                raise self._fatal
            if deadline is not None and time.monotonic() > deadline:
                raise IotcError("E_TIMEOUT", "Not connected within %ss" % timeout)
        return True

    # ---- internals ------------------------------------------------------------------------------------------

    def _drop(self):
        app = self.socket
        if app is None:
            return
        app.keep_running = False
        conn = getattr(app, "sock", None)
        if conn is None or conn.sock is None:
            return
        # The close frame, without waiting for the hub's (the socket thread reads it); then a shutdown, which wakes
        # that thread at once where closing the file descriptor under its select() would leave it asleep.
        try:
            conn.send_close()
        except Exception:
            pass
        try:
            conn.sock.shutdown(socket.SHUT_RDWR)
        except Exception:
            pass

    @staticmethod
    def _side(write):
        return {"write": write} if write else {}

    @staticmethod
    def _reading(m):
        r = {"sensor": m["sensor"], "value": m["value"], "time": m["time"], "write": m["write"]}
        if m.get("sync"):
            r["sync"] = True
        return r

    def _wait(self, future, timeout, what):
        if threading.current_thread() is self._recv_thread:
            raise RuntimeError("Blocking calls cannot run on the socket thread; use on_tick/on_connect, which run on their own thread")
        try:
            body = future.result(self.READ_TIMEOUT if timeout is None and what else timeout)
        except FutureTimeout:
            raise IotcError("E_TIMEOUT", "%s: no answer from the hub within %ss" % (what or "put", timeout or self.READ_TIMEOUT))
        return body

    def _enqueue(self, kind, message, to_tick=False, report=False):
        with self._lock:
            if self._stopped.is_set() and self._fatal is not None:
                future = Future()
                future.set_exception(self._fatal)
                return future
            pending = _Pending(self._next_id, kind, message, to_tick, report)
            self._next_id += 1
            self._pending[pending.id] = pending
            if self._accepted.is_set():
                self._transmit(pending)
        return pending.future

    def _transmit(self, pending):
        """Hands a request to the sender (call with the lock held)."""
        if not pending.queued:
            pending.queued = True
            self._outbox.append(pending)
            self._outbox_ready.notify()

    def _send_loop(self):
        tokens, refilled = float(self.MAX_BURST), time.monotonic()
        while True:
            with self._lock:
                while not (self._outbox and self._accepted.is_set()):
                    self._outbox_ready.wait(0.5)
                pending = self._outbox.popleft()
                pending.queued = False
                if self._pending.get(pending.id) is not pending:
                    continue
                pending.sent = True
                sock = self.socket
            now = time.monotonic()
            tokens, refilled = min(self.MAX_BURST, tokens + (now - refilled) * self.MAX_RATE), now
            if tokens < 1:
                time.sleep((1 - tokens) / self.MAX_RATE)
                tokens = 1.0
            tokens -= 1
            try:
                if pending.message.get("method") == "blob":
                    sock.send(_blob_frame(pending.message, pending.id), websocket.ABNF.OPCODE_BINARY)
                else:
                    sock.send(json.dumps(dict(pending.message, id=pending.id)))
            except Exception:
                # The connection is going; the request is sent again once it is back.
                pending.sent = False

    def _run(self, kwargs):
        attempt = 0
        while not self._stopped.is_set():
            self._recv_thread = threading.current_thread()
            self._last_refusal = None
            self._held = []
            close = {"code": None}
            app = websocket.WebSocketApp(
                self.socket_url,
                on_open=self._on_open,
                on_message=self._on_frame,
                on_error=lambda ws, err: self._callback(self.on_error, err, self),
                on_close=lambda ws, code=None, reason=None: close.update(code=code, reason=reason),
            )
            self.socket = app
            app.run_forever(**kwargs)
            was_accepted = self._accepted.is_set()
            self._accepted.clear()
            self._callback(self.on_close, self)
            if was_accepted:
                attempt = 0
            fatal = FATAL_CLOSE_CODES.get(close["code"])
            if fatal:
                self._fatal = self._last_refusal or IotcError(fatal, close.get("reason") or "The hub refused the connection")
                self._callback(self.on_error, self._fatal, self)
                self._fail_all(self._fatal)
                self._stopped.set()
            if self._stopped.is_set() or not self.auto_reconnect or (self.RECONNECT_TRIES and attempt >= self.RECONNECT_TRIES):
                break
            with self._lock:
                for p in self._outbox:
                    p.queued = False
                self._outbox.clear()
                for p in list(self._pending.values()):
                    if p.sent and p.kind == "call":
                        # The device may have run it: a command is not sent twice.
                        del self._pending[p.id]
                        p.future.set_exception(IotcError("E_UNAVAILABLE", "The connection to the hub was lost before the answer"))
                    p.sent = False
            ceiling = min(self.RECONNECT_MAX_INTERVAL, self.RECONNECT_INTERVAL * 2 ** attempt)
            delay = ceiling / 2 + random.random() * ceiling / 2
            attempt += 1
            self._callback(self.on_reconnect, self, attempt, delay)
            self._stopped.wait(delay)
        self.socket = None
        self._recv_thread = None
        self._callback(self.on_noreconnect, self)
        if self._fatal is None:
            self._fail_all(IotcError("E_UNAVAILABLE", "The client was closed"))
        # connect() returns once the callbacks due have run (on_error of a refusal, on_close), as the original's did.
        if threading.current_thread().name != "iotcommunicate-callbacks":
            drained = threading.Event()
            self._callbacks.put((drained.set, ()))
            drained.wait(5)

    def _on_open(self, app):
        # The hub completes the handshake even to refuse a key: only an answer proves the connection was accepted.
        app.send(json.dumps({"method": "ping", "id": _HELLO}))

    def _on_frame(self, app, text):
        if isinstance(text, bytes):
            # A binary frame: one length byte, a JSON header, the chunk (docs/protocol.md).
            try:
                header = json.loads(text[1:1 + text[0]].decode("utf-8"))
                blob = dict(header, data=text[1 + text[0]:])
            except (ValueError, IndexError):
                return
            self._callback(self.on_blob, blob, self)
            return
        self._callback(self.on_message, text, self)
        try:
            m = json.loads(text)
        except ValueError:
            return
        if not isinstance(m, dict):
            return
        if "ok" in m:
            if m.get("id") == _HELLO:
                with self._lock:
                    self._accepted.set()
                    for p in sorted(self._pending.values(), key=lambda p: p.id):
                        if not p.sent:
                            self._transmit(p)
                self._callback(self.on_connect, self)
                held, self._held = self._held, []
                for frame in held:
                    self._unasked(frame)
                return
            with self._lock:
                p = self._pending.pop(m.get("id"), None) if isinstance(m.get("id"), int) else None
            if p is None:
                if m.get("ok") is False:
                    err = IotcError(m.get("code", "E_INTERNAL"), m.get("error", "Error"))
                    if self._accepted.is_set():
                        self._callback(self.on_error, err, self)
                    else:
                        self._last_refusal = err
                return
            if m["ok"]:
                p.future.set_result(m)
                if p.to_tick:
                    self._callback(self.on_tick, self._reading(m), self)
            else:
                err = IotcError(m.get("code", "E_INTERNAL"), m.get("error", "Error"), m.get("call"))
                p.future.set_exception(err)
                if p.report:
                    self._callback(self.on_error, err, self)
            return
        if not isinstance(m.get("sensor"), str) or "value" not in m:
            return
        if not self._accepted.is_set():
            self._held.append(m)
        else:
            self._unasked(m)

    def _unasked(self, m):
        if isinstance(m.get("call"), str) and self.side == "device":
            self._callbacks.put((self._answer, (m,)))
        elif m["sensor"] == "$call" and isinstance(m["value"], dict):
            self._callback(self.on_call_state, m["value"], self)
        else:
            self._callback(self.on_tick, self._reading(m), self)

    def _answer(self, m):
        handler = self._handlers.get(m["sensor"]) or self._handlers.get("*")
        reply = {"method": "reply", "call": m["call"]}
        if handler is None:
            reply["error"] = 'This device has no handler for "%s"' % m["sensor"]
        else:
            try:
                reply["result"] = handler(m["value"])
            except Exception as err:  # the device's own failure becomes the caller's E_DEVICE
                reply["error"] = str(err) or err.__class__.__name__
        self._enqueue("request", reply, report=True)

    def _callback(self, fn, *args):
        if fn is not None:
            self._callbacks.put((fn, args))

    def _dispatch(self):
        while True:
            fn, args = self._callbacks.get()
            try:
                fn(*args)
            except Exception:  # a failing callback must not stop the others
                import traceback

                traceback.print_exc()

    def _fail_all(self, err):
        with self._lock:
            pending = list(self._pending.values())
            self._pending.clear()
        for p in pending:
            if not p.future.done():
                p.future.set_exception(err)
