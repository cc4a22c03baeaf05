// RandomFields: seeded random values for protobuf messages through reflection, for the fuzz tests
// of the server (config_fuzz_test.cc, message_fuzz_test.cc): extreme and typical integers, enum
// numbers outside the enums, NaN and infinite floats, long ASCII strings. Test-only; one instance
// per thread.
#ifndef SPEECHLLM_TESTS_INTEGRATION_SERVER_RANDOM_FIELDS_H_
#define SPEECHLLM_TESTS_INTEGRATION_SERVER_RANDOM_FIELDS_H_

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>

#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace speechllm::itest {

class RandomFields {
 public:
  explicit RandomFields(uint32_t seed) : rng_(seed) {}

  // Sets every field of `message` with probability 1/2 (messages up to `depth` levels down).
  void FillAll(google::protobuf::Message* message, int depth) {
    const auto* descriptor = message->GetDescriptor();
    for (int i = 0; i < descriptor->field_count(); ++i) {
      if (Below(2) == 0) Set(message, descriptor->field(i), depth);
    }
  }
  // Changes one field somewhere in `message`: a random field, or one inside a sub-message.
  void ChangeOne(google::protobuf::Message* message, int depth) {
    const auto* descriptor = message->GetDescriptor();
    const google::protobuf::FieldDescriptor* field =
        descriptor->field(static_cast<int>(Below(descriptor->field_count())));
    if (field->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE &&
        !field->is_repeated() && depth > 0 && Below(3) != 0) {
      ChangeOne(message->GetReflection()->MutableMessage(message, field), depth - 1);
      return;
    }
    message->GetReflection()->ClearField(message, field);
    Set(message, field, depth);
  }
  uint64_t Below(uint64_t n) { return n == 0 ? 0 : rng_() % n; }
  // An extreme (min or max), a typical value or a small random one.
  int64_t Integer(int64_t min, int64_t max) {
    const int64_t typical[] = {0, 1, -1, 2, 7, 100, 500, 8000, 16000, 30000, 48000, 1 << 20};
    switch (Below(4)) {
      case 0:
        return Below(2) ? min : max;
      case 1:
        return typical[Below(sizeof(typical) / sizeof(typical[0]))];
      default:
        return static_cast<int64_t>(Below(100000)) - 1000;
    }
  }

 private:
  float Float() {
    const float values[] = {0.0f,   1.0f,  5.0f,          20.0f,
                            21.0f,  -1.0f, std::nanf(""), std::numeric_limits<float>::infinity(),
                            -1e30f, 1e30f};
    return values[Below(sizeof(values) / sizeof(values[0]))];
  }
  std::string String() {
    const char* const typical[] = {
        "", "en", "en-US", "zh", "x", "default", "qwen2-audio-tiny", "final_mode", "unknown_knob"};
    if (Below(2) == 0) return typical[Below(sizeof(typical) / sizeof(typical[0]))];
    const size_t lengths[] = {1, 16, 300, 20000};
    std::string text(lengths[Below(4)], ' ');
    for (char& c : text) c = static_cast<char>(32 + Below(95));  // ASCII: proto3 strings are UTF-8
    return text;
  }

  void Set(google::protobuf::Message* message, const google::protobuf::FieldDescriptor* field,
           int depth) {
    const auto* reflection = message->GetReflection();
    const int count = field->is_repeated() ? static_cast<int>(Below(4)) : 1;
    for (int k = 0; k < count; ++k) {
      const bool repeated = field->is_repeated();
      switch (field->cpp_type()) {
        case google::protobuf::FieldDescriptor::CPPTYPE_INT32: {
          const auto v = static_cast<int32_t>(
              Integer(std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max()));
          repeated ? reflection->AddInt32(message, field, v)
                   : reflection->SetInt32(message, field, v);
          break;
        }
        case google::protobuf::FieldDescriptor::CPPTYPE_INT64: {
          const int64_t v =
              Integer(std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max());
          repeated ? reflection->AddInt64(message, field, v)
                   : reflection->SetInt64(message, field, v);
          break;
        }
        case google::protobuf::FieldDescriptor::CPPTYPE_UINT32: {
          const auto v = static_cast<uint32_t>(Integer(0, std::numeric_limits<uint32_t>::max()));
          repeated ? reflection->AddUInt32(message, field, v)
                   : reflection->SetUInt32(message, field, v);
          break;
        }
        case google::protobuf::FieldDescriptor::CPPTYPE_UINT64: {
          const auto v = static_cast<uint64_t>(Integer(0, std::numeric_limits<int64_t>::max()));
          repeated ? reflection->AddUInt64(message, field, v)
                   : reflection->SetUInt64(message, field, v);
          break;
        }
        case google::protobuf::FieldDescriptor::CPPTYPE_BOOL:
          repeated ? reflection->AddBool(message, field, Below(2))
                   : reflection->SetBool(message, field, Below(2));
          break;
        case google::protobuf::FieldDescriptor::CPPTYPE_FLOAT:
          repeated ? reflection->AddFloat(message, field, Float())
                   : reflection->SetFloat(message, field, Float());
          break;
        case google::protobuf::FieldDescriptor::CPPTYPE_DOUBLE:
          repeated ? reflection->AddDouble(message, field, Float())
                   : reflection->SetDouble(message, field, Float());
          break;
        case google::protobuf::FieldDescriptor::CPPTYPE_ENUM: {
          const auto* values = field->enum_type();
          const int number =
              Below(4) == 0
                  ? static_cast<int>(Below(1000))
                  : values->value(static_cast<int>(Below(values->value_count())))->number();
          repeated ? reflection->AddEnumValue(message, field, number)
                   : reflection->SetEnumValue(message, field, number);
          break;
        }
        case google::protobuf::FieldDescriptor::CPPTYPE_STRING:
          repeated ? reflection->AddString(message, field, String())
                   : reflection->SetString(message, field, String());
          break;
        case google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE: {
          google::protobuf::Message* child = repeated ? reflection->AddMessage(message, field)
                                                      : reflection->MutableMessage(message, field);
          if (depth > 0) FillAll(child, depth - 1);
          break;
        }
      }
    }
  }

  std::mt19937 rng_;
};

}  // namespace speechllm::itest

#endif  // SPEECHLLM_TESTS_INTEGRATION_SERVER_RANDOM_FIELDS_H_
