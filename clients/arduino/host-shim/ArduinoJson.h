// Compile-only host shim of ArduinoJson 7 (Benoit Blanchon): the part of its API IOTcommunicate and the examples
// use, with the same names and call shapes, and no JSON inside (every value reads as null/its default).
// The compile test uses the real ArduinoJson instead when ARDUINOJSON_DIR points at its src/ folder.
#pragma once
#include <Arduino.h>

class JsonVariantConst {
 public:
  bool isNull() const { return true; }
  template <typename T>
  bool is() const { return false; }
  template <typename T>
  T as() const { return T(); }
  template <typename T>
  operator T() const { return T(); }
  JsonVariantConst operator[](const char*) const { return JsonVariantConst(); }
  template <typename T>
  T operator|(T fallback) const { return fallback; }
};

class JsonVariant : public JsonVariantConst {
 public:
  JsonVariant operator[](const char*) const { return JsonVariant(); }
  template <typename T>
  JsonVariant& operator=(const T&) { return *this; }
  template <typename T>
  T to() const { return T(); }
};

class JsonDocument {
 public:
  JsonVariant operator[](const char*) { return JsonVariant(); }
  JsonVariantConst operator[](const char*) const { return JsonVariantConst(); }
  void clear() {}
};

class DeserializationError {
 public:
  explicit operator bool() const { return false; }
  const char* c_str() const { return "Ok"; }
};

inline DeserializationError deserializeJson(JsonDocument&, const uint8_t*, size_t) { return DeserializationError(); }
inline DeserializationError deserializeJson(JsonDocument&, const char*, size_t) { return DeserializationError(); }
inline DeserializationError deserializeJson(JsonDocument&, const char*) { return DeserializationError(); }
inline size_t serializeJson(const JsonDocument&, String&) { return 0; }
inline size_t serializeJson(const JsonDocument&, char*, size_t) { return 0; }
