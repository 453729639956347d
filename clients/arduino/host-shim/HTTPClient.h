// Host shim of the ESP32 Arduino core's HTTPClient: the calls the CameraFrames sketch makes, declared as the real
// header declares them. Unlike the WebSockets shim it really sends: plain HTTP/1.1 over a POSIX socket, so a test
// can run the sketch against a hub.
#pragma once
#include <Arduino.h>
#include <string>
#include <vector>

class HTTPClient {
 public:
  bool begin(String url);
  void addHeader(const String& name, const String& value);
  int sendRequest(const char* type, uint8_t* payload = nullptr, size_t size = 0);
  void end(void);

 private:
  std::string host_, path_, headers_;
  uint16_t port_ = 80;
};
