// Definitions behind the host shims, and a main() that runs a sketch's setup() and one loop().
#include <Arduino.h>
#include <WebSocketsClient.h>
#include <WiFi.h>

HostSerial Serial;
HostWiFi WiFi;

unsigned long millis() { return 0; }
void delay(unsigned long) {}
void pinMode(uint8_t, uint8_t) {}
void digitalWrite(uint8_t, uint8_t) {}
int analogRead(uint8_t) { return 0; }
long random(long max) { return max > 0 ? std::rand() % max : 0; }

void WebSocketsClient::begin(const char*, uint16_t, const char*, const char*) {}
void WebSocketsClient::beginSSL(const char*, uint16_t, const char*, const char*, const char*) {}
void WebSocketsClient::loop(void) {}
void WebSocketsClient::disconnect(void) {}
void WebSocketsClient::onEvent(WebSocketClientEvent cbEvent) { cbEvent_ = cbEvent; }
bool WebSocketsClient::sendTXT(uint8_t*, size_t, bool) { return true; }
bool WebSocketsClient::sendTXT(const uint8_t*, size_t) { return true; }
bool WebSocketsClient::sendTXT(char*, size_t, bool) { return true; }
bool WebSocketsClient::sendTXT(const char*, size_t) { return true; }
bool WebSocketsClient::sendTXT(String&) { return true; }
bool WebSocketsClient::isConnected(void) { return false; }
void WebSocketsClient::setReconnectInterval(unsigned long) {}
void WebSocketsClient::enableHeartbeat(uint32_t, uint32_t, uint8_t) {}
void WebSocketsClient::disableHeartbeat() {}

void setup();
void loop();

int main() {
  setup();
  loop();
  return 0;
}
