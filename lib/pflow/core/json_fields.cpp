// Reading config JSON: the bounded parser and the "did you mean" hint (json_fields.hpp).
#include "pflow/core/json_fields.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

namespace pflow {

std::string closest_name(const std::string& word, const std::vector<std::string>& options) {
  auto distance = [](const std::string& a, const std::string& b) {
    // Optimal string alignment distance: edits and adjacent transpositions ("cdl" -> "cld").
    std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
    for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
    for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
    for (size_t i = 1; i <= a.size(); ++i)
      for (size_t j = 1; j <= b.size(); ++j) {
        d[i][j] =
            std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1])});
        if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
          d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    return d[a.size()][b.size()];
  };
  std::string best;
  if (word.size() > 64) return best;  // no option is that long; and the table would be huge
  size_t best_d = std::max<size_t>(3, word.size() / 2) + 1;
  for (const auto& o : options) {
    const size_t d = distance(word, o);
    if (d < best_d) best_d = d, best = o;
  }
  return best;
}

namespace {

// The message of an input nested deeper than max_json_depth; `where` locates the excess.
std::string too_deep(const std::string& where) {
  return "nests arrays and objects more than " + std::to_string(max_json_depth) + " levels deep" +
         where + "; pflow's own inputs need at most 5";
}

}  // namespace

int json_nesting_excess(const std::string& text, int limit) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) return static_cast<int>(std::min<size_t>(i, INT32_MAX));
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return -1;
}

json parse_json_text(const std::string& text, const std::string& field, const std::string& value) {
  const int at = json_nesting_excess(text, max_json_depth);
  if (at >= 0) {
    const auto line = 1 + std::count(text.begin(), text.begin() + at, '\n');
    throw InputError(
        field, value,
        too_deep(" (line " + std::to_string(line) + ", byte " + std::to_string(at) + ")"));
  }
  return json::parse(text, nullptr, false);
}

void require_bounded_depth(const json& value, const std::string& field) {
  std::vector<std::pair<const json*, int>> stack{{&value, 0}};
  while (!stack.empty()) {
    const auto [v, depth] = stack.back();
    stack.pop_back();
    if (!v->is_structured()) continue;
    if (depth + 1 > max_json_depth)
      throw InputError(field, "(a value " + std::to_string(depth + 1) + " levels deep)",
                       too_deep(""));
    for (const json& child : *v) stack.emplace_back(&child, depth + 1);
  }
}

std::optional<std::string> read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();  // an empty file, or a directory (which opens on Linux), gives ""
  return std::move(text).str();
}

}  // namespace pflow
