// Host shim of the Arduino core, just enough to compile IOTcommunicate and its examples with g++ on a PC.
// Not the real core: see ../README.md ("What was run where").
#pragma once
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#define HIGH 1
#define LOW 0
#define OUTPUT 1
#define INPUT 0

#define A0 0

class String {
 public:
  String() {}
  String(const char* s) : s_(s ? s : "") {}
  String(const std::string& s) : s_(s) {}
  const char* c_str() const { return s_.c_str(); }
  unsigned int length() const { return (unsigned int)s_.size(); }
  String& operator+=(const char* s) { s_ += s; return *this; }
  String& operator+=(const String& s) { s_ += s.s_; return *this; }
  String& operator+=(char c) { s_ += c; return *this; }
  friend String operator+(const String& a, const char* b) { return String(a.s_ + b); }
  friend String operator+(const String& a, const String& b) { return String(a.s_ + b.s_); }
  bool operator==(const char* o) const { return s_ == o; }

 private:
  std::string s_;
};

struct HostSerial {
  void begin(unsigned long) {}
  void println(const char* s) { std::puts(s); }
  void println(const String& s) { std::puts(s.c_str()); }
  void print(const char* s) { std::fputs(s, stdout); }
  int printf(const char* format, ...) __attribute__((format(printf, 2, 3))) {
    va_list args;
    va_start(args, format);
    int n = std::vprintf(format, args);
    va_end(args);
    return n;
  }
};
extern HostSerial Serial;

unsigned long millis();
void delay(unsigned long ms);
void pinMode(uint8_t pin, uint8_t mode);
void digitalWrite(uint8_t pin, uint8_t value);
int analogRead(uint8_t pin);
long random(long max);
