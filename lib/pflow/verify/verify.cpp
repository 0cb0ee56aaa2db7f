#include "pflow/verify/verify.hpp"

#include <cstdio>

#include "pflow/verify/verify_impl.hpp"

namespace pflow {

std::vector<CheckRow> verify_double(const VerifyOptions& options) {
  return verify_detail::run_all<double>(options);
}

std::vector<std::string> verify_sde_names() {
  std::vector<std::string> names;
  for (const auto& c : verify_detail::all_cases()) names.push_back(c.name);
  return names;
}

std::string format_check_table(const std::vector<CheckRow>& rows) {
  size_t width = 5;
  for (const auto& r : rows) width = std::max(width, r.check.size());
  std::string out;
  char line[512];
  std::snprintf(line, sizeof line, "%-*s  %-10s  %-8s  %-9s  %-9s  %s\n", static_cast<int>(width),
                "check", "sde", "prec", "max error", "tolerance", "result");
  out += line;
  out += std::string(width + 52, '-') + "\n";
  for (const auto& r : rows) {
    std::snprintf(line, sizeof line, "%-*s  %-10s  %-8s  %9.2e  %9.1e  %s\n",
                  static_cast<int>(width), r.check.c_str(), r.sde.c_str(), r.precision.c_str(),
                  r.error, r.tolerance, r.pass() ? "pass" : "FAIL");
    out += line;
  }
  return out;
}

}  // namespace pflow
