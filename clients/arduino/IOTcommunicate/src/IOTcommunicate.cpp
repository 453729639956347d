#include "IOTcommunicate.h"

namespace {
// The first ping's id: the hub completes the handshake even to refuse a key, so only its answer proves acceptance.
const char* const HELLO = "hello";
const unsigned long FIRST_RETRY_MS = 1000;
const unsigned long MAX_RETRY_MS = 60000;
}  // namespace

IOTcommunicate::IOTcommunicate(const char* deviceId, const char* key, const char* side)
    : deviceId_(deviceId), key_(key), side_(side) {}

void IOTcommunicate::begin(const char* host, uint16_t port, const char* path) { connectTo(host, port, path, false); }

void IOTcommunicate::beginSSL(const char* host, uint16_t port, const char* path) { connectTo(host, port, path, true); }

void IOTcommunicate::connectTo(const char* host, uint16_t port, const char* path, bool ssl) {
  path_ = String(path) + "?device=" + deviceId_ + "&key=" + key_ + "&side=" + side_;
  refused_ = false;
  failures_ = 0;
  ws_.onEvent([this](WStype_t type, uint8_t* payload, size_t length) { handleEvent(type, payload, length); });
  scheduleReconnect();
  // The hub pings every 25 s; these pings find a dead link sooner than TCP would.
  ws_.enableHeartbeat(25000, 10000, 2);
  if (ssl) {
    ws_.beginSSL(host, port, path_.c_str());
  } else {
    ws_.begin(host, port, path_.c_str());
  }
}

void IOTcommunicate::loop() { ws_.loop(); }

void IOTcommunicate::scheduleReconnect() {
  // Doubling waits with jitter, so a room of boards cut off by one restart does not come back in one wave.
  unsigned long ceiling = FIRST_RETRY_MS << (failures_ < 6 ? failures_ : 6);
  if (ceiling > MAX_RETRY_MS) ceiling = MAX_RETRY_MS;
  ws_.setReconnectInterval(ceiling / 2 + random(ceiling / 2 + 1));
}

void IOTcommunicate::handleEvent(WStype_t type, uint8_t* payload, size_t length) {
  switch (type) {
    case WStype_CONNECTED:
      ws_.sendTXT("{\"method\":\"ping\",\"id\":\"hello\"}");
      break;
    case WStype_TEXT:
      handleText(payload, length);
      break;
    case WStype_DISCONNECTED: {
      bool was = accepted_;
      accepted_ = false;
      if (failures_ < 255) failures_++;
      if (refused_) {
        // A wrong key stays wrong: stop dialing until begin() is called again with another.
        ws_.disconnect();
        ws_.setReconnectInterval(0xFFFFFFFFUL);
      } else {
        scheduleReconnect();
      }
      if (was && onConnection_) onConnection_(false);
      break;
    }
    default:
      break;
  }
}

void IOTcommunicate::handleText(const uint8_t* payload, size_t length) {
  JsonDocument doc;
  if (deserializeJson(doc, payload, length)) return;
  if (!doc["ok"].isNull()) {
    const char* code = doc["code"] | "";
    if (doc["id"].is<const char*>()) {
      const char* id = doc["id"];
      if (strcmp(id, HELLO) == 0) {
        accepted_ = true;
        failures_ = 0;
        scheduleReconnect();
        if (onConnection_) onConnection_(true);
      }
      return;
    }
    if (doc["id"].isNull()) {
      // A refusal comes as {"ok":false,"code":"E_AUTH"} just before the hub closes.
      if (strcmp(code, "E_AUTH") == 0 || strcmp(code, "E_KEY_ROTATED") == 0 || strcmp(code, "E_DEVICE_DELETED") == 0) refused_ = true;
      return;
    }
    bool ok = doc["ok"] | false;
    // A get's answer carries the reading; a put's only its fate.
    if (ok && doc["sensor"].is<const char*>() && onValue_) onValue_(doc["sensor"], doc["value"], false);
    if (onAck_) onAck_(doc["id"] | 0UL, ok, code);
    return;
  }
  const char* sensor = doc["sensor"] | "";
  if (!*sensor) return;
  if (doc["call"].is<const char*>()) {
    answerCall(doc["call"], sensor, doc["value"]);
    return;
  }
  if (onValue_) onValue_(sensor, doc["value"], doc["sync"] | false);
}

void IOTcommunicate::answerCall(const char* call, const char* method, JsonVariantConst params) {
  JsonDocument reply;
  reply["method"] = "reply";
  reply["call"] = call;
  reply["id"] = nextId_++;
  CallHandler handler = nullptr;
  for (uint8_t i = 0; i < MAX_CALL_HANDLERS; i++) {
    if (callMethods_[i] && strcmp(callMethods_[i], method) == 0) handler = callHandlers_[i];
  }
  if (!handler) {
    reply["error"] = String("This device has no handler for \"") + method + "\"";
  } else {
    CallReply answer(reply);
    handler(params, answer);
    if (reply["error"].isNull() && reply["result"].isNull()) reply["result"] = nullptr;
  }
  send(reply);
}

bool IOTcommunicate::onCall(const char* method, CallHandler handler) {
  for (uint8_t i = 0; i < MAX_CALL_HANDLERS; i++) {
    if (!callMethods_[i] || strcmp(callMethods_[i], method) == 0) {
      callMethods_[i] = method;
      callHandlers_[i] = handler;
      return true;
    }
  }
  return false;
}

uint32_t IOTcommunicate::put(const char* sensor, JsonVariantConst value) { return putValue(sensor, value); }

uint32_t IOTcommunicate::put(const char* sensor, double value) { return putValue(sensor, value); }

uint32_t IOTcommunicate::put(const char* sensor, long value) { return putValue(sensor, value); }

uint32_t IOTcommunicate::put(const char* sensor, bool value) { return putValue(sensor, value); }

uint32_t IOTcommunicate::put(const char* sensor, const char* value) { return putValue(sensor, value); }

uint32_t IOTcommunicate::sendPut(JsonDocument& doc) {
  if (!accepted_) return 0;
  uint32_t id = nextId_++;
  doc["method"] = "put";
  // With an id the hub acknowledges once the value is stored.
  doc["id"] = id;
  return send(doc) ? id : 0;
}

bool IOTcommunicate::get(const char* sensor) {
  if (!accepted_) return false;
  JsonDocument doc;
  doc["method"] = "gets";
  doc["id"] = nextId_++;
  doc["sensor"] = sensor;
  return send(doc);
}

bool IOTcommunicate::send(JsonDocument& doc) {
  String text;
  serializeJson(doc, text);
  return ws_.sendTXT(text);
}
