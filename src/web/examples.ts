import type { ServerAddress } from './address.js';

/** Marks where the device key goes: the docs page turns it into a slot the browser fills from the URL fragment. */
export const KEY_MARK = '\u0000KEY\u0000';
export const ID_PLACEHOLDER = 'DEVICE_ID';
export const KEY_PLACEHOLDER = 'DEVICE_KEY';

/** The hub's MQTT TCP listener as it really is: the bound port, or null with the reason it is off. */
export interface MqttListener {
  port: number | null;
  /** Why there is no TCP listener, in a sentence's words. */
  off?: string;
  /** The port the hub wanted but another program holds: whatever answers there is not this hub. */
  taken?: number;
}

export interface ExampleTarget {
  addr: ServerAddress;
  /** The device id, or DEVICE_ID. */
  id: string;
  /** Absent: no TCP listener (the examples use MQTT over WebSocket). */
  mqtt?: MqttListener;
}

/** The host a board on the network should use: the page's own, or this computer's LAN address when the page was opened via loopback. */
export function boardHost(addr: ServerAddress): { hostname: string; port: number; fromLan: boolean } {
  const lan = addr.loopback ? addr.lanHosts[0] : undefined;
  if (!lan) return { hostname: addr.hostname.replace(/^\[|\]$/g, ''), port: addr.port, fromLan: false };
  const m = /^(.*?)(?::(\d+))?$/.exec(lan)!;
  return { hostname: m[1], port: m[2] ? Number(m[2]) : addr.port, fromLan: true };
}

export interface Example {
  id: string;
  title: string;
  /** Short label for its tab. */
  tab: string;
  /** What to install or where to put it. */
  intro: string;
  language: string;
  /** A file name to save it as. */
  file: string;
  code: string;
}

const wsPath = (t: ExampleTarget, side: 'device' | 'client') => `/ws?device=${t.id}&key=${KEY_MARK}&side=${side}`;

function arduino(t: ExampleTarget): string {
  const { addr } = t;
  const board = boardHost(addr);
  const hostNote = board.fromLan
    ? `// this computer's network address: you opened the page as ${addr.hostname}, which a board cannot reach`
    : addr.loopback
      ? `// ${addr.hostname} is this computer only: put its network address here`
      : '// this server, as your board reaches it';
  return `// IOTcommunicate: an ESP32 / ESP8266 that reports a temperature and drives a lamp (the LED).
// Libraries (Arduino IDE > Tools > Manage Libraries): "WebSockets" by Markus Sattler and "ArduinoJson" (v7).
#if defined(ESP32)
#include <WiFi.h>
#else
#include <ESP8266WiFi.h>
#endif
#include <WebSocketsClient.h>
#include <ArduinoJson.h>

const char* WIFI_SSID     = "your-wifi";
const char* WIFI_PASSWORD = "your-wifi-password";
const char* HOST = "${board.hostname}";   ${hostNote}
const uint16_t PORT = ${board.port};
const char* PATH = "${wsPath(t, 'device')}";
const int LED_PIN = 2;                  // the on-board LED on most boards

WebSocketsClient ws;
unsigned long lastReport = 0;

// Sends {"method":"put","status":{"sensor":...,"value":...}}: stored, and delivered live to your apps.
template <typename T>
void put(const char* sensor, T value) {
  JsonDocument doc;
  doc["method"] = "put";
  JsonObject status = doc["status"].to<JsonObject>();
  status["sensor"] = sensor;
  status["value"] = value;
  String text;
  serializeJson(doc, text);
  ws.sendTXT(text);
}

float readTemperature() {
#if defined(ESP32)
  return temperatureRead();             // the chip's own sensor: replace with yours (DHT22, DS18B20, ...)
#else
  return analogRead(A0) * 0.1;          // a stand-in: replace with your sensor
#endif
}

void onEvent(WStype_t type, uint8_t* payload, size_t length) {
  if (type == WStype_CONNECTED) {
    Serial.println("Connected to IOTcommunicate");
    put("led", digitalRead(LED_PIN) == HIGH);   // tell the app the lamp's state
  } else if (type == WStype_DISCONNECTED) {
    Serial.println("Disconnected; retrying");
  } else if (type == WStype_TEXT) {
    JsonDocument msg;
    if (deserializeJson(msg, payload, length)) return;
    if (!msg["ok"].isNull()) {                  // a reply to one of our requests
      if (!msg["ok"].as<bool>()) Serial.println(msg["error"].as<const char*>());
      return;
    }
    // A reading from the app: {"sensor":"led","value":true,"time":...,"write":"client"}
    if (msg["sensor"] == "led") {
      bool on = msg["value"].as<bool>();
      digitalWrite(LED_PIN, on ? HIGH : LOW);
      put("led", on);                           // confirm the new state
    }
  }
}

void setup() {
  Serial.begin(115200);
  pinMode(LED_PIN, OUTPUT);
  WiFi.begin(WIFI_SSID, WIFI_PASSWORD);
  while (WiFi.status() != WL_CONNECTED) { delay(500); Serial.print("."); }
  Serial.println(WiFi.localIP());
  ws.${addr.secure ? 'beginSSL' : 'begin'}(HOST, PORT, PATH);
  ws.onEvent(onEvent);
  ws.setReconnectInterval(5000);
  ws.enableHeartbeat(15000, 3000, 2);
}

void loop() {
  ws.loop();
  if (ws.isConnected() && millis() - lastReport > 5000) {
    lastReport = millis();
    put("temp", readTemperature());
  }
}
`;
}

function python(t: ExampleTarget): string {
  return `# IOTcommunicate: a device in Python that reports a temperature and follows a lamp switch.
# pip install websocket-client        (Debian/Ubuntu: apt install python3-websocket)
import json
import random
import threading
import time

import websocket

URL = "${t.addr.wsBase}${wsPath(t, 'device')}"
led = False


def put(ws, sensor, value):
    ws.send(json.dumps({"method": "put", "status": {"sensor": sensor, "value": value}}))


def on_open(ws):
    print("connected", flush=True)
    put(ws, "led", led)  # tell the app the lamp's state


def on_message(ws, text):
    global led
    msg = json.loads(text)
    if "ok" in msg:  # a reply to one of our requests
        if not msg["ok"]:
            print("error:", msg["error"], flush=True)
        return
    # A reading from the app: {"sensor": "led", "value": true, "time": ..., "write": "client"}
    print(msg["sensor"], "->", msg["value"], flush=True)
    if msg["sensor"] == "led":
        led = msg["value"] in (True, 1, "on", "true")
        print("lamp", "ON" if led else "off", flush=True)
        put(ws, "led", led)  # confirm the new state


def on_close(ws, code, reason):
    print("closed", code, reason or "", flush=True)


app = websocket.WebSocketApp(URL, on_open=on_open, on_message=on_message, on_close=on_close)


def report():
    temp = 21.0
    while True:
        time.sleep(2)
        temp += random.uniform(-0.3, 0.3)
        try:
            put(app, "temp", round(temp, 2))
        except Exception:
            pass  # not connected right now: the next reading comes in 2 s


threading.Thread(target=report, daemon=True).start()
while True:
    app.run_forever(ping_interval=30, ping_timeout=10)
    time.sleep(5)  # connection lost: try again
`;
}

function browser(t: ExampleTarget): string {
  return `<!doctype html>
<!-- IOTcommunicate: a tiny web app that shows the temperature and switches the lamp.
     Anyone who can read this page can read its key: keep it on your own machine or network. -->
<meta charset="utf-8">
<p>Temperature: <b id="temp">…</b></p>
<button id="lamp">Lamp on/off</button>
<script>
  const ws = new WebSocket("${t.addr.wsBase}${wsPath(t, 'client')}");
  let led = false;
  ws.onmessage = (event) => {
    const msg = JSON.parse(event.data);
    if ("ok" in msg) { if (!msg.ok) console.warn(msg.error); return; }   // replies to our requests
    if (msg.sensor === "temp") document.getElementById("temp").textContent = msg.value;
    if (msg.sensor === "led") led = msg.value === true;
  };
  ws.onopen = () => ws.send(JSON.stringify({ method: "gets", sensor: "temp", id: "t" }));
  document.getElementById("lamp").onclick = () => {
    led = !led;
    ws.send(JSON.stringify({ method: "put", status: { sensor: "led", value: led } }));
  };
</script>
`;
}

function node(t: ExampleTarget): string {
  return `// IOTcommunicate: an app in Node.js (20+) that prints every reading and switches the lamp when you type on / off.
// npm install ws        then: node app.mjs
import WebSocket from "ws";
import readline from "node:readline";

const URL = "${t.addr.wsBase}${wsPath(t, 'client')}";
let ws;

function connect() {
  ws = new WebSocket(URL);
  ws.on("open", () => console.log("connected: type on or off to switch the lamp"));
  ws.on("message", (data) => {
    const msg = JSON.parse(data);
    if ("ok" in msg) { if (!msg.ok) console.error("error:", msg.error); return; }   // replies to our requests
    console.log(new Date(msg.time).toLocaleTimeString(), msg.sensor, "=", msg.value);
  });
  ws.on("close", (code, reason) => {
    console.log("closed", code, reason.toString(), "- reconnecting in 5 s");
    setTimeout(connect, 5000);
  });
  ws.on("error", () => {});   // "close" follows
}
connect();

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const value = line.trim() === "on";
  ws.send(JSON.stringify({ method: "put", status: { sensor: "led", value } }));
});
`;
}

function http(t: ExampleTarget): string {
  const base = t.addr.httpBase;
  return `# Send one reading (a GET that fits in any microcontroller's HTTP client):
curl "${base}/api/v1/update?device=${t.id}&key=${KEY_MARK}&temp=21.5"

# Or POST it as JSON:
curl -X POST ${base}/api/v1/devices/${t.id}/readings -H "X-Device-Key: ${KEY_MARK}" -H "Content-Type: application/json" -d '{"sensor":"temp","value":21.5}'
`;
}

function mqtt(t: ExampleTarget): string {
  const host = t.addr.hostname.replace(/^\[|\]$/g, '');
  const port = t.mqtt?.port ?? null;
  if (port === null) {
    // No TCP listener here: whatever answers on the MQTT port (if anything) is another broker, so say so and use the WebSocket door.
    const scheme = t.addr.secure ? 'wss' : 'ws';
    const taken = t.mqtt?.taken ? `\n# Whatever answers on port ${t.mqtt.taken} here is another broker, not this hub: readings sent there never arrive.` : '';
    return `# This hub has no MQTT TCP listener: ${t.mqtt?.off ?? 'it is off'}.${taken}
# Use MQTT over WebSocket instead, at ${t.addr.wsBase}/mqtt, e.g. with MQTT.js's command line (npm install -g mqtt):

# Publish a reading (user = device id, password = device key):
mqtt pub -l ${scheme} -h ${host} -p ${t.addr.port} --path /mqtt -u ${t.id} -P ${KEY_MARK} -t devices/${t.id}/temp -m 21.5

# Receive what the other side writes, e.g. the lamp switch:
mqtt sub -l ${scheme} -h ${host} -p ${t.addr.port} --path /mqtt -u ${t.id} -P ${KEY_MARK} -t 'devices/${t.id}/+'
`;
  }
  return `# Publish a reading (user = device id, password = device key):
mosquitto_pub -h ${host} -p ${port} -u ${t.id} -P ${KEY_MARK} -t devices/${t.id}/temp -m 21.5

# Receive what the other side writes, e.g. the lamp switch:
mosquitto_sub -h ${host} -p ${port} -u ${t.id} -P ${KEY_MARK} -t 'devices/${t.id}/+'

# The same over WebSocket (for browsers and networks that only pass HTTP): ${t.addr.wsBase}/mqtt
`;
}

export function examples(t: ExampleTarget): Example[] {
  return [
    { id: 'arduino', tab: 'Arduino', title: 'Arduino (ESP32 / ESP8266)', language: 'cpp', file: 'iotc_lamp.ino', intro: `Install the “WebSockets” library by Markus Sattler and “ArduinoJson” from the Library Manager, set your Wi-Fi, upload, and open the Serial Monitor at 115200 baud.${boardHost(t.addr).fromLan ? ` HOST is this computer's network address (${boardHost(t.addr).hostname}), not ${t.addr.hostname}: a board cannot reach the address you opened this page with.` : ''}`, code: arduino(t) },
    { id: 'python', tab: 'Python', title: 'Python', language: 'python', file: 'device.py', intro: 'Needs websocket-client (pip install websocket-client). Save as device.py and run python3 device.py: it sends a temperature every 2 seconds and prints “lamp ON” when you flip the switch on the device page.', code: python(t) },
    { id: 'browser', tab: 'Browser JS', title: 'JavaScript (browser)', language: 'html', file: 'lamp.html', intro: 'Save as lamp.html and open it: it shows the temperature and switches the lamp. It connects as the client side, like the device page does.', code: browser(t) },
    { id: 'node', tab: 'Node.js', title: 'JavaScript (Node.js)', language: 'javascript', file: 'app.mjs', intro: 'An app on the client side: prints every reading and sends the lamp switch when you type on or off.', code: node(t) },
    { id: 'http', tab: 'HTTP', title: 'HTTP', language: 'shell', file: 'shell', intro: 'For boards or tools that only speak HTTP: each request stores one reading, which reaches connected apps live.', code: http(t) },
    { id: 'mqtt', tab: 'MQTT', title: 'MQTT', language: 'shell', file: 'shell', intro: t.mqtt?.port != null ? `For MQTT devices and tools: this hub's MQTT port is ${t.mqtt.port}; topic devices/ID/SENSOR, the device id as user name and the key as password.` : `This hub has no MQTT TCP listener (${t.mqtt?.off ?? 'it is off'}): MQTT works over WebSocket at /mqtt on the web port. Topic devices/ID/SENSOR, the device id as user name and the key as password.`, code: mqtt(t) },
  ];
}
