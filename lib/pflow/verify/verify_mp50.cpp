#include <map>
#include <mutex>

#include "pflow/verify/verify.hpp"
#include "pflow/verify/verify_impl.hpp"

namespace pflow {

namespace verify_detail {

Mat<mp50> reference_solution(const Case& c, const Mat<mp50>& x_start) {
  static std::mutex mutex;
  static std::map<std::string, Mat<mp50>> cache;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cache.find(c.name);
  if (it != cache.end() && it->second.cols() == x_start.cols()) return it->second;
  const auto sde = make_sde<mp50>(c.sde, c.dim);
  const auto data = make_target<mp50>(c.gaussian);
  Mat<mp50> x = reference_flow<mp50>(*sde, data, x_start, from_double<mp50>(c.flow_from),
                                     from_double<mp50>(c.flow_to));
  cache[c.name] = x;
  return x;
}

}  // namespace verify_detail

std::vector<CheckRow> verify_mp50(const VerifyOptions& options) {
  return verify_detail::run_all<mp50>(options);
}

}  // namespace pflow
