// Relaxation to equilibrium in kind "kernel" (docs/NOTES.md sec. 19): the slowest decay rate and
// KL(p_t || p_eq) for Gaussian data, for VP (no circulation: the overdamped twin is the SDE
// itself) and for CLD against its overdamped twin (Q = 0, the same equilibrium and noise), whose
// positions never relax.
#include "helpers.hpp"
#include "pflow/experiment/run.hpp"

using namespace pflow;
using json = nlohmann::json;

namespace {

std::map<std::string, std::vector<double>> kernel_tables(const json& sde, const json& target,
                                                         const std::vector<double>& times) {
  const json c = {{"name", "relaxation"},
                  {"kind", "kernel"},
                  {"sde", sde},
                  {"target", target},
                  {"times", times}};
  std::map<std::string, std::vector<double>> out;
  for (const Table& t : run_experiment(parse_experiment(c), {}).tables) out[t.path] = t.data;
  return out;
}

}  // namespace

TEST_CASE(
    "kernel: VP relaxes at beta(t)/2 with the KL of N(alpha m, alpha^2 S + sigma^2 I) to "
    "N(0, I)",
    "[kernel]") {
  const std::vector<double> times = {0.05, 0.2, 0.5, 1.0};
  const json target = {
      {"type", "gaussian"}, {"mean", {0.5, -1.0}}, {"cov", {{1.0, 0.8}, {0.8, 0.9}}}};
  auto t =
      kernel_tables({{"type", "vp-linear"}, {"beta_min", 0.1}, {"beta_max", 20.0}}, target, times);
  Mat<double> s(2, 2);
  s << 1.0, 0.8, 0.8, 0.9;
  Vec<double> m(2);
  m << 0.5, -1.0;
  for (size_t i = 0; i < times.size(); ++i) {
    const double time = times[i], beta = 0.1 + 19.9 * time;
    const double alpha = std::exp(-(0.1 * time + 19.9 * time * time / 2) / 2);
    const double var = 1 - alpha * alpha;
    const Mat<double> c = alpha * alpha * s + var * Mat<double>::Identity(2, 2);
    const double kl =
        (c.trace() + alpha * alpha * m.squaredNorm() - 2 - std::log(c.determinant())) / 2;
    INFO("t = " << time);
    CHECK(std::abs(t["/kernel/decay_rate"][i] - beta / 2) <= 1e-12 * beta);
    CHECK(std::abs(t["/kernel/decay_rate_overdamped"][i] - beta / 2) <= 1e-12 * beta);
    CHECK(std::abs(t["/kernel/kl_to_equilibrium"][i] - kl) <= 1e-10 * kl + 1e-15);
    CHECK(std::abs(t["/kernel/kl_overdamped"][i] - kl) <= 1e-10 * kl + 1e-15);
  }
}

TEST_CASE(
    "kernel: CLD relaxes at 2 beta through its circulation, the overdamped twin never "
    "relaxes the position",
    "[kernel]") {
  const std::vector<double> times = {0.05, 0.2, 0.4, 0.6, 0.8, 1.0};
  const json target = {{"type", "gaussian"}, {"mean", {0.7}}, {"cov", {{0.5}}}};
  auto t = kernel_tables({{"type", "cld"}}, target, times);
  // F = beta [[0, 1/M], [-1, -Gamma/M]] with M = 1/4, Gamma = 1, beta = 4: the double eigenvalue
  // -2 beta (critical damping). The twin F = -D Sigma_eq^{-1} = -beta diag(0, Gamma / M) has 0.
  const double position_kl = (0.5 + 0.49 - 1 - std::log(0.5)) / 2;  // N(0.7, 0.5) vs N(0, 1)
  for (size_t i = 0; i < times.size(); ++i) {
    INFO("t = " << times[i]);
    // A defective (double) eigenvalue: computed to about sqrt(eps) |F| ~ 2e-7.
    CHECK(std::abs(t["/kernel/decay_rate"][i] - 8) <= 1e-5);
    CHECK(std::abs(t["/kernel/decay_rate_overdamped"][i]) <= 1e-12);
    CHECK(t["/kernel/kl_overdamped"][i] >= position_kl - 1e-12);
    if (i > 0) CHECK(t["/kernel/kl_to_equilibrium"][i] < t["/kernel/kl_to_equilibrium"][i - 1]);
  }
  // The twin keeps the position's distribution and relaxes only the velocity (at rate 2 beta
  // Gamma / M = 32): its KL tends to the position's own KL.
  CHECK(std::abs(t["/kernel/kl_overdamped"].back() - position_kl) <= 1e-12);
  CHECK(t["/kernel/kl_to_equilibrium"].back() < 1e-5);
}
