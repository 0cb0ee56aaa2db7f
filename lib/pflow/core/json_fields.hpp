// Reading one JSON object of a config: types checked, unknown keys rejected with the closest
// valid name suggested, every error naming the JSON path and the offending value.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pflow/core/errors.hpp"
#include "pflow/core/scalar.hpp"

namespace pflow {

// Closest string of `options` to `word` by edit distance ("" if none is close).
std::string closest_name(const std::string& word, const std::vector<std::string>& options);

using json = nlohmann::json;

// JSON inputs (configs, model files, checkpoints, stored configs) may nest arrays and objects at
// most this deep. Deeper text is refused before it is parsed, so no recursive walk of a value
// (serialising, comparing, copying) meets an unbounded depth; pflow's own inputs need at most 5 (a
// config's target.covs).
inline constexpr int max_json_depth = 64;

// The byte offset where `text` first nests deeper than `limit` (strings skipped), or -1.
int json_nesting_excess(const std::string& text, int limit);

// Parses JSON text of at most max_json_depth levels; deeper text is an InputError on `field`
// (printed as `value`: a path or a name). Invalid JSON comes back discarded (is_discarded()), for
// the caller's own message.
json parse_json_text(const std::string& text, const std::string& field, const std::string& value);

// The whole content of a file, bytes as they are (a config, a checkpoint's JSON or states);
// std::nullopt if it cannot be opened.
std::optional<std::string> read_text_file(const std::string& path);

// The same bound on a value built in memory (a config given as an object, not as text): an
// InputError on `field` when it nests deeper than max_json_depth. Walks without recursion.
void require_bounded_depth(const json& value, const std::string& field);

// Reads fields of one JSON object, checking types and rejecting unknown keys.
class Fields {
 public:
  Fields(const json& j, std::string path, std::vector<std::string> allowed)
      : j_(j), path_(std::move(path)), allowed_(std::move(allowed)) {
    require(j.is_object(), path_, j.dump(), "must be a JSON object");
    for (const auto& [key, value] : j.items()) {
      if (std::find(allowed_.begin(), allowed_.end(), key) != allowed_.end()) continue;
      const std::string hint = closest_name(key, allowed_);
      throw InputError(path_ + "." + key, value.dump(),
                       "unknown key" + (hint.empty() ? "" : " (did you mean '" + hint + "'?)") +
                           "; valid keys: " + join(allowed_));
    }
  }
  std::string at(const std::string& key) const { return path_ + "." + key; }
  bool has(const std::string& key) const { return j_.contains(key); }

  template <class Scalar>
  Scalar number(const std::string& key, std::optional<double> fallback = std::nullopt) const {
    if (!has(key)) {
      if (fallback) return from_double<Scalar>(*fallback);
      throw InputError(at(key), "(missing)", "is required");
    }
    return number_of<Scalar>(j_.at(key), at(key));
  }
  int integer(const std::string& key, std::optional<int> fallback = std::nullopt) const {
    if (!has(key)) {
      if (fallback) return *fallback;
      throw InputError(at(key), "(missing)", "is required");
    }
    return integer_of(j_.at(key), at(key));
  }
  template <class Scalar>
  Vec<Scalar> vector(const std::string& key) const {
    if (!has(key)) throw InputError(at(key), "(missing)", "is required");
    return vector_of<Scalar>(j_.at(key), at(key));
  }
  template <class Scalar>
  Mat<Scalar> matrix(const std::string& key) const {
    if (!has(key)) throw InputError(at(key), "(missing)", "is required");
    return matrix_of<Scalar>(j_.at(key), at(key));
  }
  const json& raw(const std::string& key) const { return j_.at(key); }
  // A string field, one of `choices` when they are given.
  std::string text(const std::string& key, std::optional<std::string> fallback = std::nullopt,
                   const std::vector<std::string>& choices = {}) const {
    if (!has(key)) {
      if (fallback) return *fallback;
      throw InputError(at(key), "(missing)", "is required");
    }
    const json& v = j_.at(key);
    require(v.is_string(), at(key), v.dump(), "must be a string");
    const std::string s = v.get<std::string>();
    if (!choices.empty() && std::find(choices.begin(), choices.end(), s) == choices.end()) {
      const std::string hint = closest_name(s, choices);
      throw InputError(at(key), s,
                       "is not one of " + join(choices) +
                           (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
    }
    return s;
  }
  bool boolean(const std::string& key, bool fallback) const {
    if (!has(key)) return fallback;
    const json& v = j_.at(key);
    require(v.is_boolean(), at(key), v.dump(), "must be true or false");
    return v.get<bool>();
  }
  static std::string join(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return s;
  }

  // An integer in int's range: get<int>() alone would wrap 4294967298 to 2.
  static int integer_of(const json& v, const std::string& where) {
    require(v.is_number_integer(), where, v.dump(), "must be an integer");
    constexpr auto lo = std::numeric_limits<int>::min(), hi = std::numeric_limits<int>::max();
    const bool fits = v.is_number_unsigned()
                          ? v.get<std::uint64_t>() <= static_cast<std::uint64_t>(hi)
                          : v.get<std::int64_t>() >= lo && v.get<std::int64_t>() <= hi;
    require(fits, where, v.dump(), "is out of range");
    return v.get<int>();
  }
  template <class Scalar>
  static Scalar number_of(const json& v, const std::string& where) {
    require(v.is_number(), where, v.dump(), "must be a number");
    const double d = v.get<double>();
    require(std::isfinite(d), where, v.dump(), "must be finite");
    return from_double<Scalar>(d);
  }
  template <class Scalar>
  static Vec<Scalar> vector_of(const json& v, const std::string& where) {
    require(v.is_array() && !v.empty(), where, v.dump(), "must be a non-empty array of numbers");
    Vec<Scalar> out(v.size());
    for (size_t i = 0; i < v.size(); ++i)
      out(i) = number_of<Scalar>(v[i], where + "[" + std::to_string(i) + "]");
    return out;
  }
  // A matrix as an array of rows.
  template <class Scalar>
  static Mat<Scalar> matrix_of(const json& v, const std::string& where) {
    require(v.is_array() && !v.empty() && v[0].is_array(), where, v.dump(),
            "must be a non-empty array of rows");
    const size_t cols = v[0].size();
    Mat<Scalar> out(v.size(), cols);
    for (size_t r = 0; r < v.size(); ++r) {
      const std::string row = where + "[" + std::to_string(r) + "]";
      require(v[r].is_array() && v[r].size() == cols, row, v[r].dump(),
              "must be an array of " + std::to_string(cols) + " numbers like row 0");
      for (size_t c = 0; c < cols; ++c)
        out(r, c) = number_of<Scalar>(v[r][c], row + "[" + std::to_string(c) + "]");
    }
    return out;
  }

 private:
  const json& j_;
  std::string path_;
  std::vector<std::string> allowed_;
};

}  // namespace pflow
