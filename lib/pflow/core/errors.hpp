// Errors raised by pflow. Every error about user input names the offending field and its value.
#pragma once

#include <charconv>
#include <exception>
#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace pflow {

// Bad user input: a parameter, config field or file content. `field` is the parameter name
// (or JSON path), `value` its printed value, `why` what is wrong with it.
class InputError : public std::runtime_error {
 public:
  InputError(std::string field, std::string value, const std::string& why)
      : InputError(brief(std::move(field)), brief(std::move(value)), why, 0) {}
  const std::string& field() const { return field_; }
  const std::string& value() const { return value_; }
  const std::string& why() const { return why_; }
  // The same error with its field placed under a JSON path: "sde" + "beta_min".
  InputError under(const std::string& path) const {
    return InputError(path + "." + field_, value_, why_);
  }

 private:
  InputError(std::string field, std::string value, const std::string& why, int)
      : std::runtime_error(field + " = " + value + ": " + why),
        field_(std::move(field)),
        value_(std::move(value)),
        why_(why) {}
  // A field or value is printed whole up to 200 characters, else its start and its length: a
  // message stays readable (and small) when the offending value is a megabyte array.
  static std::string brief(std::string value) {
    if (value.size() <= 200) return value;
    return value.substr(0, 160) + "... (" + std::to_string(value.size()) + " characters)";
  }
  std::string field_;
  std::string value_;
  std::string why_;
};

// A numerical failure (non-finite state, failed factorisation, integrator gave up).
class NumericalError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A file could not be read or written for a reason outside the user's input: the disk is full,
// the location is read-only, a write failed half way. `path` is the file, `what` the operation.
class IoError : public std::runtime_error {
 public:
  IoError(const std::string& path, const std::string& what)
      : std::runtime_error(path + ": " + what) {}
  // The same error from its whole message (an error that another MPI rank raised).
  static IoError from_message(const std::string& message) { return IoError(message); }

 private:
  explicit IoError(const std::string& message) : std::runtime_error(message) {}
};

// What a failure means for the program (app/main.cpp): its exit status (2 bad input, 3 I/O, 4
// numerical or internal) and the one line it prints on stderr.
struct FailureReport {
  int status = 4;
  std::string line;
};
inline FailureReport report_failure(const std::exception_ptr& failure) {
  try {
    std::rethrow_exception(failure);
  } catch (const InputError& e) {
    return {2, std::string("pflow: error: ") + e.what()};
  } catch (const IoError& e) {
    return {3, std::string("pflow: I/O error: ") + e.what()};
  } catch (const std::filesystem::filesystem_error& e) {
    return {3, std::string("pflow: I/O error: ") + e.what()};
  } catch (const NumericalError& e) {
    return {4, std::string("pflow: numerical failure: ") + e.what()};
  } catch (const std::exception& e) {
    return {4, std::string("pflow: internal error: ") + e.what()};
  } catch (...) {
    return {4, "pflow: internal error: an unknown exception"};
  }
}

// Prints a value for an error message; doubles in their shortest round-trip form (0.9, not
// 0.90000000000000002).
template <class T>
std::string to_text(const T& v) {
  std::ostringstream os;
  if constexpr (std::is_floating_point_v<T>) {
    char buf[64];
    const auto end = std::to_chars(buf, buf + sizeof buf, v).ptr;
    return std::string(buf, end);
  } else {
    os.precision(20);
    os << v;
  }
  return os.str();
}

// Throws InputError(field, value, why) unless `ok`.
template <class T>
void require(bool ok, const std::string& field, const T& value, const std::string& why) {
  if (!ok) throw InputError(field, to_text(value), why);
}

}  // namespace pflow
