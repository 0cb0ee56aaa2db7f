// Every check of `pflow verify`, for every SDE, in double and in mp50 (one ctest test each, so
// they run in parallel). Each SDE must produce its full set of checks, all passing.
#include <catch2/catch.hpp>

#include "pflow/verify/verify.hpp"

using namespace pflow;

namespace {

// Checks per SDE: Sigma (3 paths; 2 without a closed form), Psi (2), lambda for scalar SDEs,
// Q (not for VE/EDM: F = 0 has no equilibrium), R R^T = C, flow map, score; plus the public
// values (vp-linear: 2, cld: 1) and the rotation-angle path (cld).
int expected_checks(const std::string& sde) {
  if (sde == "vp-linear") return 12;
  if (sde == "vp-cosine" || sde == "sub-vp" || sde == "rectified-flow") return 10;
  if (sde == "ve" || sde == "edm") return 9;
  if (sde == "cld") return 11;
  if (sde == "blurring") return 8;
  return 8;  // linear
}

void require_all_pass(const std::vector<CheckRow>& rows, const std::string& sde) {
  REQUIRE(static_cast<int>(rows.size()) == expected_checks(sde));
  for (const auto& row : rows) {
    INFO(row.check << " [" << row.sde << ", " << row.precision << "]: error " << row.error
                   << ", tolerance " << row.tolerance);
    CHECK(row.pass());
    CHECK(row.sde == sde);
  }
}

}  // namespace

// One test per SDE runs both precisions: the 50-digit reference solve of the flow-map check is
// cached per process and shared by the double and the mp50 checks. The sweeps tagged
// [mp50-long] run in Release only (scripts/test); under the sanitizers, vp-linear (closed forms,
// public values) and cld (matrix kernels, rotation angle, public values) run every check path
// of verify in both precisions, and the 50-digit kernels of the other SDEs run in the [sde],
// [core] and [targets] suites.
#define PFLOW_VERIFY_TESTS(SDE, TAGS)                               \
  TEST_CASE("verify " SDE " in double and mp50", TAGS) {            \
    require_all_pass(verify_double(VerifyOptions{{SDE}, {}}), SDE); \
    require_all_pass(verify_mp50(VerifyOptions{{SDE}, {}}), SDE);   \
  }

PFLOW_VERIFY_TESTS("vp-linear", "[verify]")
PFLOW_VERIFY_TESTS("vp-cosine", "[verify][mp50-long]")
PFLOW_VERIFY_TESTS("sub-vp", "[verify][mp50-long]")
PFLOW_VERIFY_TESTS("rectified-flow", "[verify][mp50-long]")
PFLOW_VERIFY_TESTS("ve", "[verify][mp50-long]")
PFLOW_VERIFY_TESTS("edm", "[verify][mp50-long]")
PFLOW_VERIFY_TESTS("cld", "[verify]")
PFLOW_VERIFY_TESTS("blurring", "[verify][mp50-long]")
PFLOW_VERIFY_TESTS("linear", "[verify][mp50-long]")

// The same checks in float128, tolerances scaled from double's by the epsilon ratio 2^-60
// (floored at mp50's; finite differences, truncation-limited, at 1e-20). vp-linear runs under the
// sanitizers too.
#define PFLOW_VERIFY_F128_TESTS(SDE, TAGS)                        \
  TEST_CASE("verify " SDE " in float128", TAGS) {                 \
    require_all_pass(verify_f128(VerifyOptions{{SDE}, {}}), SDE); \
  }

PFLOW_VERIFY_F128_TESTS("vp-linear", "[verify][float128]")
PFLOW_VERIFY_F128_TESTS("vp-cosine", "[verify][float128][mp50-long]")
PFLOW_VERIFY_F128_TESTS("sub-vp", "[verify][float128][mp50-long]")
PFLOW_VERIFY_F128_TESTS("rectified-flow", "[verify][float128][mp50-long]")
PFLOW_VERIFY_F128_TESTS("ve", "[verify][float128][mp50-long]")
PFLOW_VERIFY_F128_TESTS("edm", "[verify][float128][mp50-long]")
PFLOW_VERIFY_F128_TESTS("cld", "[verify][float128][mp50-long]")
PFLOW_VERIFY_F128_TESTS("blurring", "[verify][float128][mp50-long]")
PFLOW_VERIFY_F128_TESTS("linear", "[verify][float128][mp50-long]")

TEST_CASE("verify covers every SDE type", "[verify]") {
  const auto names = verify_sde_names();
  REQUIRE(names.size() == 9);
  for (const char* n : {"vp-linear", "vp-cosine", "sub-vp", "rectified-flow", "ve", "edm", "cld",
                        "blurring", "linear"})
    CHECK(std::find(names.begin(), names.end(), n) != names.end());
}

TEST_CASE("A failing check is reported as a failure", "[verify]") {
  const CheckRow bad{"x", "ve", "double", 1e-3, 1e-12};
  const CheckRow nan{"x", "ve", "double", std::numeric_limits<double>::quiet_NaN(), 1e-12};
  CHECK_FALSE(bad.pass());
  CHECK_FALSE(nan.pass());
  CHECK(format_check_table({bad}).find("FAIL") != std::string::npos);
}
