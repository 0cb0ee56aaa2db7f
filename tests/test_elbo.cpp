// DDPM's evidence lower bound with the exact model (docs/NOTES.md sec. 18): L_T against the
// Gaussian KL written out (and seed 002's formula, which is the reversed KL), each L_{t-1}
// against dense Gaussian conditioning, L_simple's weights, the closed form against Monte Carlo,
// the bound below the exact log-likelihood for every T, and double against 50 digits.
#include "helpers.hpp"
#include "pflow/experiment/run.hpp"
#include "pflow/experiment/table.hpp"
#include "pflow/flow/elbo.hpp"
#include "pflow/sde/factory.hpp"

using namespace pflow;
using namespace pflow::testing;
using json = nlohmann::json;

namespace {

template <class Scalar>
VpDiscrete<Scalar> chain(const std::string& schedule, int steps) {
  const auto made = make_sde<Scalar>(
      json{{"type", "vp-discrete"}, {"schedule", schedule}, {"T", steps}}, 2, "sde");
  return dynamic_cast<const VpDiscrete<Scalar>&>(*made);
}

const json& gaussian() {
  static const json g = {
      {"type", "gaussian"}, {"mean", {0.5, -1.0}}, {"cov", {{1.0, 0.8}, {0.8, 0.9}}}};
  return g;
}

}  // namespace

TEST_CASE("L_T is KL(q(x_T | x0) || N(0, I)), and seed 002's formula is the reversed KL",
          "[elbo]") {
  const auto data = make_target<double>(gaussian());
  const Vec<double> m = data.means().col(0);
  const Mat<double> s = data.cov(0).to_dense();
  for (int steps : {10, 100, 1000}) {
    const VpDiscrete<double> c = chain<double>("linear", steps);
    const double abar = c.alpha_bar(steps), d = 2;
    // KL(N(mu1, S1) || N(mu2, S2)) = (tr(S2^-1 S1) + (mu2 - mu1)^T S2^-1 (mu2 - mu1) - d +
    // log det S2 - log det S1) / 2, with mu1 = sqrt(abar) x0, S1 = (1 - abar) I, N(0, I); its
    // mean over x0 ~ N(m, S) uses E|x0|^2 = tr S + |m|^2.
    const double e_x0 = s.trace() + m.squaredNorm();
    const double forward = (d * (1 - abar) + abar * e_x0 - d - d * std::log(1 - abar)) / 2;
    const ElboTerms<double> e = gaussian_elbo<double>(c, m, s);
    INFO("T = " << steps);
    CHECK(std::abs(e.prior - forward) <= 1e-13 * (1 + std::abs(forward)));
    // The seed's L_T = (log(1 - abar) + n (1/(1 - abar) - 1) + abar/(1 - abar) E|X0|^2) / 2 is
    // the reversed KL(N(0, I) || q(x_T | x0)) (S1 = I, S2 = (1 - abar) I, mu2 - mu1 = sqrt(abar)
    // x0), except that its log det S2 = n log(1 - abar) lost the factor n: they differ by
    // (n - 1)/2 log(1 - abar).
    const double seed =
        (std::log(1 - abar) + d * (1 / (1 - abar) - 1) + abar / (1 - abar) * e_x0) / 2;
    const double reversed =
        (d / (1 - abar) + abar * e_x0 / (1 - abar) - d + d * std::log(1 - abar)) / 2;
    CHECK(std::abs(seed + (d - 1) / 2 * std::log(1 - abar) - reversed) <=
          1e-13 * (1 + std::abs(reversed)));
    CHECK(std::abs(reversed - forward) > 1e-6 * forward);  // not the term of the bound
  }
}

TEST_CASE("each L_{t-1} is b_t^2 tr Cov(x0 | x_t) / (2 beta-tilde_t), with L_simple's weights",
          "[elbo]") {
  const auto data = make_target<double>(gaussian());
  const Vec<double> m = data.means().col(0);
  const Mat<double> s = data.cov(0).to_dense();
  const VpDiscrete<double> c = chain<double>("linear", 1000);
  const ElboTerms<double> e = gaussian_elbo<double>(c, m, s);
  REQUIRE(e.transitions.size() == 999);
  double weighted = 0, summed = 0;
  for (int t = 2; t <= 1000; ++t) {
    // Cov(x0 | x_t) in information form: (S^{-1} + abar / (1 - abar) I)^{-1} (x_t / sqrt(abar)
    // observes x0 with noise variance (1 - abar) / abar), dense, no eigenvalues.
    const double precision = c.alpha_bar(t) / c.one_minus_alpha_bar(t);
    const Mat<double> posterior = (s.inverse() + precision * Mat<double>::Identity(2, 2)).inverse();
    const auto post = c.posterior(t);
    const double expected =
        post.x0_coefficient * post.x0_coefficient * posterior.trace() / (2 * post.variance);
    INFO("t = " << t);
    CHECK(std::abs(e.transitions[t - 2] - expected) <= 1e-12 * expected);
    weighted += elbo_weight(c, t) * e.eps_mse[t - 1];
    summed += e.transitions[t - 2];
  }
  // sum_t w_t E|eps - eps_hat|^2 is the sum of the L_{t-1}.
  CHECK(std::abs(weighted - summed) <= 1e-12 * summed);
  // The decoder: tr Cov(x0 | x1) / (2 beta_1) + log(2 pi beta_1), d = 2.
  const double beta_1 = c.betas().front(), precision = c.alpha_bar(1) / c.one_minus_alpha_bar(1);
  const double trace = (s.inverse() + precision * Mat<double>::Identity(2, 2)).inverse().trace();
  const double decoder = trace / (2 * beta_1) + std::log(2 * M_PI * beta_1);
  CHECK(std::abs(e.decoder - decoder) <= 1e-13 * std::abs(decoder));
}

TEST_CASE("the closed-form ELBO terms agree with Monte Carlo within 3 standard errors", "[elbo]") {
  const auto data = make_target<double>(gaussian());
  const VpDiscrete<double> c = chain<double>("vp-linear", 100);
  const AnalyticDenoiser<double> model(c, data);
  const ElboTerms<double> closed =
      gaussian_elbo<double>(c, data.means().col(0), data.cov(0).to_dense());
  const ElboTerms<double> mc = monte_carlo_elbo(c, data, model, 4000, 11);
  auto z = [](double exact, double estimate, double se) { return std::abs(estimate - exact) / se; };
  INFO("-ELBO closed " << closed.total() << ", Monte Carlo " << mc.total() << " +- "
                       << mc.total_se());
  CHECK(z(closed.total(), mc.total(), mc.total_se()) < 3);
  CHECK(z(closed.prior, mc.prior, mc.prior_se) < 3);
  CHECK(z(closed.decoder, mc.decoder, mc.decoder_se) < 3);
  int beyond = 0;
  double worst = 0;
  for (size_t k = 0; k < closed.transitions.size(); ++k) {
    const double zk = z(closed.transitions[k], mc.transitions[k], mc.transitions_se[k]);
    worst = std::max(worst, zk);
    beyond += zk >= 3;
  }
  // 99 terms: about 0.27 beyond 3 standard errors by chance; none beyond 4.
  INFO("largest |z| " << worst << ", beyond 3: " << beyond);
  CHECK(beyond <= 2);
  CHECK(worst < 4);
}

TEST_CASE("the ELBO lies below the exact log-likelihood for every T and the gap shrinks",
          "[elbo]") {
  // Gaussian data in closed form; the mixture by Monte Carlo against its exact log-density.
  const auto data = make_target<double>(gaussian());
  const double log_likelihood = gaussian_expected_log_density<double>(data.cov(0).to_dense());
  double previous_gap = std::numeric_limits<double>::infinity();
  for (int steps : {30, 100, 300, 1000, 3000}) {
    const VpDiscrete<double> c = chain<double>("vp-linear", steps);
    const double gap =
        log_likelihood +
        gaussian_elbo<double>(c, data.means().col(0), data.cov(0).to_dense()).total();
    INFO("T = " << steps << ": gap " << gap);
    CHECK(gap > 0);
    CHECK(gap < previous_gap);
    previous_gap = gap;
  }
  const auto gmm = make_target<double>(headline_mixture());
  Rng rng(5);
  const auto [log_p, log_p_se] =
      mean_and_standard_error<double>(gmm.log_density(gmm.sample(20000, rng)));
  for (int steps : {30, 100}) {
    const VpDiscrete<double> c = chain<double>("vp-linear", steps);
    const AnalyticDenoiser<double> model(c, gmm);
    const ElboTerms<double> mc = monte_carlo_elbo(c, gmm, model, 2000, 3);
    const double gap = log_p + mc.total();
    const double se = std::sqrt(log_p_se * log_p_se + mc.total_se() * mc.total_se());
    INFO("mixture, T = " << steps << ": gap " << gap << " +- " << se);
    CHECK(gap > 3 * se);
  }
}

TEST_CASE("the closed-form ELBO in double against 50 digits", "[elbo]") {
  const auto data = make_target<double>(gaussian());
  const auto data50 = make_target<mp50>(gaussian());
  // The linear schedule: its betas are the same numbers in both types to 1e-16 (the cosine
  // schedule's beta_1 = 1 - abar_1 / abar_0 alone differs by 1e-12 relative between them).
  const ElboTerms<double> e = gaussian_elbo<double>(chain<double>("linear", 1000),
                                                    data.means().col(0), data.cov(0).to_dense());
  const ElboTerms<mp50> e50 = gaussian_elbo<mp50>(chain<mp50>("linear", 1000),
                                                  data50.means().col(0), data50.cov(0).to_dense());
  CHECK(std::abs(e.total() - to_double(e50.total())) <= 1e-12 * std::abs(to_double(e50.total())));
  CHECK(std::abs(e.prior - to_double(e50.prior)) <= 1e-12 * (1 + std::abs(to_double(e50.prior))));
  CHECK(std::abs(e.decoder - to_double(e50.decoder)) <= 1e-12 * std::abs(to_double(e50.decoder)));
}

TEST_CASE("kind elbo: the bound per chain length, its terms per step, bad configs", "[elbo]") {
  json c = {{"name", "elbo"},
            {"kind", "elbo"},
            {"sde", {{"type", "vp-discrete"}, {"schedule", "vp-linear"}, {"T", 100}}},
            {"target", gaussian()},
            {"elbo", {{"T", {30, 100}}, {"samples", 500}, {"seed", 2}}}};
  const ExperimentResult r = run_experiment(parse_experiment(c), {});
  std::map<std::string, std::vector<double>> t;
  for (const Table& table : r.tables) t[table.path] = table.data;
  REQUIRE(t["/elbo/T"] == std::vector<double>{30, 100});
  const auto data = make_target<double>(gaussian());
  for (size_t i = 0; i < 2; ++i) {
    const ElboTerms<double> e = gaussian_elbo<double>(chain<double>("vp-linear", i == 0 ? 30 : 100),
                                                      data.means().col(0), data.cov(0).to_dense());
    CHECK(std::abs(t["/elbo/negative_elbo"][i] - e.total()) <= 1e-14 * std::abs(e.total()));
    CHECK(t["/elbo/gap"][i] > 0);
    CHECK(std::abs(t["/elbo/mc_negative_elbo"][i] - e.total()) <
          3 * t["/elbo/mc_standard_error"][i]);
  }
  CHECK(t["/elbo/gap"][1] < t["/elbo/gap"][0]);
  CHECK(t["/elbo/steps/closed"].size() == 100);
  CHECK(std::isnan(t["/elbo/steps/weight"][0]));
  CHECK_THAT(run_summary(r, 1.0), Catch::Contains("| T | L_T | sum L_{t-1} | L_0 | -ELBO |"));
  // pflow table reads the same table back from the file, in every format.
  const std::string path = testing::temp_path("elbo.h5");
  write_result(r, path);
  CHECK(result_table(path, "markdown", "") == elbo_table(t, "markdown"));
  CHECK_THAT(result_table(path, "csv", ""), Catch::StartsWith("T,prior,transitions,decoder,"));
  CHECK_THAT(result_table(path, "latex", ""), Catch::Contains("\\begin{tabular}{rrrrrrrrr}"));
  std::filesystem::remove(path);
  // Bad input, by field.
  json bad = c;
  bad["sde"] = {{"type", "vp-linear"}};
  CHECK_THROWS_WITH(parse_experiment(bad), Catch::Contains("sde.type = vp-linear"));
  bad = c;
  bad["elbo"]["T"] = {100, 30};
  CHECK_THROWS_WITH(parse_experiment(bad),
                    Catch::Contains("elbo.T[1] = 30: lengths must increase"));
  bad = c;
  bad["sde"] = {{"type", "vp-discrete"}, {"betas", {0.1, 0.2}}};
  CHECK_THROWS_WITH(parse_experiment(bad), Catch::Contains("needs a named schedule"));
  bad = c;
  bad["elbo"]["samples"] = 1;
  CHECK_THROWS_WITH(parse_experiment(bad), Catch::Contains("elbo.samples = 1"));
}
