// `pflow verify`: every exact-formula check for every SDE, in double and in 50 digits.
//
// Each check compares two independent computations (closed form vs Lyapunov ODE vs Van Loan vs
// quadrature, exact flow vs 50-digit ODE solve, ...) and reports the largest error, normalised
// as max |a - b| / max(1, max |b|), against a stated tolerance.
#pragma once

#include <string>
#include <vector>

#include "pflow/core/progress.hpp"

namespace pflow {

struct CheckRow {
  std::string check;
  std::string sde;
  std::string precision;
  double error = 0;
  double tolerance = 0;
  bool pass() const { return error <= tolerance; }  // false for NaN
};

struct VerifyOptions {
  std::vector<std::string> sdes;  // empty: all
  ProgressCallback progress;      // after each SDE's checks
};

std::vector<CheckRow> verify_double(const VerifyOptions& options);
std::vector<CheckRow> verify_mp50(const VerifyOptions& options);
std::vector<CheckRow> verify_f128(const VerifyOptions& options);

// A fixed-width text table, one row per check.
std::string format_check_table(const std::vector<CheckRow>& rows);

// The SDE names that verify knows cases for.
std::vector<std::string> verify_sde_names();

}  // namespace pflow
