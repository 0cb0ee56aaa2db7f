#include "pflow/verify/verify.hpp"
#include "pflow/verify/verify_impl.hpp"

namespace pflow {

std::vector<CheckRow> verify_f128(const VerifyOptions& options) {
  return verify_detail::run_all<f128>(options);
}

}  // namespace pflow
