// Host shim of arduinoWebSockets' WebSocketsClient (Markus Sattler, v2.x), with the signatures of its ESP32/ESP8266
// build: the methods IOTcommunicate calls, declared as the real header declares them. Compile-only: it sends nothing.
#pragma once
#include <Arduino.h>
#include <functional>

typedef enum {
  WStype_ERROR,
  WStype_DISCONNECTED,
  WStype_CONNECTED,
  WStype_TEXT,
  WStype_BIN,
  WStype_FRAGMENT_TEXT_START,
  WStype_FRAGMENT_BIN_START,
  WStype_FRAGMENT,
  WStype_FRAGMENT_FIN,
  WStype_PING,
  WStype_PONG,
} WStype_t;

class WebSocketsClient {
 public:
  typedef std::function<void(WStype_t type, uint8_t* payload, size_t length)> WebSocketClientEvent;

  void begin(const char* host, uint16_t port, const char* url = "/", const char* protocol = "arduino");
  void beginSSL(const char* host, uint16_t port, const char* url = "/", const char* fingerprint = "", const char* protocol = "arduino");
  void loop(void);
  void disconnect(void);
  void onEvent(WebSocketClientEvent cbEvent);
  bool sendTXT(uint8_t* payload, size_t length = 0, bool headerToPayload = false);
  bool sendTXT(const uint8_t* payload, size_t length = 0);
  bool sendTXT(char* payload, size_t length = 0, bool headerToPayload = false);
  bool sendTXT(const char* payload, size_t length = 0);
  bool sendTXT(String& payload);
  bool isConnected(void);
  void setReconnectInterval(unsigned long time);
  void enableHeartbeat(uint32_t pingInterval, uint32_t pongTimeout, uint8_t disconnectTimeoutCount);
  void disableHeartbeat();

 private:
  WebSocketClientEvent cbEvent_;
};
