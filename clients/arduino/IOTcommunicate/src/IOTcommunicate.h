// IOTcommunicate for ESP32 and ESP8266, on arduinoWebSockets (WebSocketsClient) and ArduinoJson 7.
// One object is one side ("device" by default) of one device, connected to a hub over WebSocket.
#pragma once

#include <Arduino.h>
#include <ArduinoJson.h>
#include <WebSocketsClient.h>

class IOTcommunicate {
 public:
  // A command's answer: fill result() or call error("why"). Left alone, the answer is null.
  class CallReply {
   public:
    explicit CallReply(JsonDocument& doc) : doc_(doc) {}
    JsonVariant result() { return doc_["result"].to<JsonVariant>(); }
    void error(const char* message) { doc_["error"] = message; }

   private:
    JsonDocument& doc_;
  };

  // A value from the other side (live, or on connecting with synced = true), or the answer to get().
  typedef void (*ValueHandler)(const char* sensor, JsonVariantConst value, bool synced);
  // A put's fate: ok, or the hub's error code ("E_VALIDATION", "E_RATE_LIMITED"…).
  typedef void (*AckHandler)(uint32_t id, bool ok, const char* code);
  // The hub accepted the connection (true) or it was lost (false).
  typedef void (*ConnectionHandler)(bool connected);
  // Runs for each command of its method; params is what the app sent.
  typedef void (*CallHandler)(JsonVariantConst params, CallReply& reply);

  static const uint8_t MAX_CALL_HANDLERS = 8;

  IOTcommunicate(const char* deviceId, const char* key, const char* side = "device");

  // Connects to ws://host:port/ws (or wss:// with beginSSL); reconnects by itself with a growing, jittered wait.
  void begin(const char* host, uint16_t port = 8888, const char* path = "/ws");
  void beginSSL(const char* host, uint16_t port = 443, const char* path = "/ws");
  // Call from loop() as often as possible.
  void loop();
  // Whether the hub accepted the connection (a wrong key connects, then is refused: it never counts as connected).
  bool connected() const { return accepted_; }
  // Whether the hub refused the key (then it stops retrying until begin() again).
  bool refused() const { return refused_; }

  // Writes a value; returns the request id (its ack goes to onAck), or 0 if not connected (nothing was sent).
  uint32_t put(const char* sensor, JsonVariantConst value);
  uint32_t put(const char* sensor, double value);
  uint32_t put(const char* sensor, float value) { return put(sensor, (double)value); }
  uint32_t put(const char* sensor, long value);
  uint32_t put(const char* sensor, int value) { return put(sensor, (long)value); }
  uint32_t put(const char* sensor, bool value);
  uint32_t put(const char* sensor, const char* value);
  // Asks for the latest value of a sensor; it arrives through onValue. Returns false if not connected.
  bool get(const char* sensor);

  void onValue(ValueHandler handler) { onValue_ = handler; }
  void onAck(AckHandler handler) { onAck_ = handler; }
  void onConnection(ConnectionHandler handler) { onConnection_ = handler; }
  // Answers the app's commands named `method` (up to MAX_CALL_HANDLERS). Returns false when full.
  bool onCall(const char* method, CallHandler handler);

 private:
  void connectTo(const char* host, uint16_t port, const char* path, bool ssl);
  void handleEvent(WStype_t type, uint8_t* payload, size_t length);
  void handleText(const uint8_t* payload, size_t length);
  void answerCall(const char* call, const char* method, JsonVariantConst params);
  // Every put overload: one value of whichever type ArduinoJson takes as is.
  template <typename T>
  uint32_t putValue(const char* sensor, T value) {
    JsonDocument doc;
    doc["status"]["sensor"] = sensor;
    doc["status"]["value"] = value;
    return sendPut(doc);
  }
  uint32_t sendPut(JsonDocument& doc);
  bool send(JsonDocument& doc);
  void scheduleReconnect();

  WebSocketsClient ws_;
  String path_;
  const char* deviceId_;
  const char* key_;
  const char* side_;
  bool accepted_ = false;
  bool refused_ = false;
  uint32_t nextId_ = 1;
  uint8_t failures_ = 0;
  ValueHandler onValue_ = nullptr;
  AckHandler onAck_ = nullptr;
  ConnectionHandler onConnection_ = nullptr;
  const char* callMethods_[MAX_CALL_HANDLERS] = {};
  CallHandler callHandlers_[MAX_CALL_HANDLERS] = {};
};
