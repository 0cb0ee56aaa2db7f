// The likelihood through the probability-flow ODE: the exact divergence of the score against
// central differences in 50 digits, and whole likelihood runs against the exact log p_eps.
#include "helpers.hpp"
#include "pflow/experiment/run.hpp"
#include "pflow/flow/likelihood.hpp"
#include "pflow/sampler/denoiser.hpp"
#include "pflow/sde/factory.hpp"

using namespace pflow;
using json = nlohmann::json;

namespace {

// The 2-D two-component mixture the likelihood checks share.
json two_component_mixture() {
  return {{"type", "gmm"},
          {"weights", {0.3, 0.7}},
          {"means", {{-1.0, 0.5}, {1.0, -0.5}}},
          {"covs", {{{0.5, 0.2}, {0.2, 0.35}}, {{0.3, -0.1}, {-0.1, 0.4}}}}};
}

// tr(W J) with J the Jacobian of the model's score, by central differences (step h) in the
// ambient basis; W is given in the spectral basis and taken to the ambient one.
Vec<mp50> divergence_by_differences(const Denoiser<mp50>& model, const LinearSde<mp50>& sde,
                                    const Mat<mp50>& x, const mp50& t, const BlockMatrix<mp50>& w) {
  const mp50 h("1e-16");
  const Mat<mp50> ambient =
      sde.from_spectral(Mat<mp50>(sde.from_spectral(w.to_dense()).transpose()));
  Vec<mp50> out = Vec<mp50>::Zero(x.cols());
  for (Eigen::Index j = 0; j < x.rows(); ++j) {
    Mat<mp50> up = x, down = x;
    up.row(j).array() += h;
    down.row(j).array() -= h;
    const Mat<mp50> column = (model.score(up, t) - model.score(down, t)) / (2 * h);  // J e_j
    // tr(W J) = sum_j (W J)_{jj} = sum_j sum_i W_{ji} J_{ij}
    out += (ambient.row(j) * column).transpose();
  }
  return out;
}

}  // namespace

TEST_CASE("the exact score divergence equals central differences in 50 digits", "[likelihood]") {
  const json gmm = two_component_mixture();
  const json blur_data = {
      {"type", "gaussian"},
      {"mean", {0.1, -0.2, 0.3, 0.0}},
      {"cov",
       {{1.0, 0.2, 0.0, 0.0}, {0.2, 1.0, 0.1, 0.0}, {0.0, 0.1, 0.8, 0.0}, {0.0, 0.0, 0.0, 0.5}}}};
  const std::vector<std::pair<json, json>> cases = {
      {{{"type", "vp-linear"}}, gmm},
      {{{"type", "cld"}}, gmm},
      {{{"type", "blurring"}, {"shape", {1, 2, 2}}}, blur_data}};
  for (const auto& [sde_json, target] : cases) {
    INFO(sde_json.dump());
    const auto data = make_target<mp50>(target, "target");
    const auto sde = make_sde<mp50>(sde_json, data.dim(), "sde");
    Rng rng(3);
    const Mat<mp50> x = rng.normal_matrix<mp50>(sde->state_dim(), 3);
    const mp50 t("0.3");
    const BlockMatrix<mp50> w = sde->diffusion(t).scaled(mp50("0.5"));
    for (int perturbed = 0; perturbed < 2; ++perturbed) {
      const std::unique_ptr<Denoiser<mp50>> model =
          perturbed ? std::unique_ptr<Denoiser<mp50>>(std::make_unique<PerturbedDenoiser<mp50>>(
                          *sde, data, mp50("0.01"), mp50("1.5")))
                    : std::make_unique<AnalyticDenoiser<mp50>>(*sde, data);
      const Vec<mp50> exact = model->score_divergence(x, t, w);
      const Vec<mp50> differences = divergence_by_differences(*model, *sde, x, t, w);
      // Central differences: truncation h^2 ~ 1e-32, rounding 1e-50 / h ~ 1e-34.
      const double deviation = to_double(mp50((exact - differences).cwiseAbs().maxCoeff()));
      INFO("deviation " << deviation);
      CHECK(deviation < 1e-28);
      CHECK(to_double(mp50(exact.cwiseAbs().maxCoeff())) > 0.1);
    }
  }
}

TEST_CASE("the augmented PF-ODE in 50 digits gives the closed-form log p_eps", "[likelihood]") {
  // Closed form (the mixture's marginal) against the ODE (state and divergence integral by
  // Bulirsch-Stoer, exact prior at T), under a scalar SDE and under CLD.
  const json gmm = two_component_mixture();
  for (const json& sde_json : {json{{"type", "vp-linear"}}, json{{"type", "cld"}}}) {
    INFO(sde_json.dump());
    const auto data = make_target<mp50>(gmm, "target");
    const auto sde = make_sde<mp50>(sde_json, 2, "sde");
    const mp50 eps("0.01"), t_max(1);
    Rng rng(4);
    const Mat<mp50> x = Marginal<mp50>(*sde, data, eps).sample(2, rng);
    const AnalyticDenoiser<mp50> model(*sde, data);
    const Vec<mp50> ode =
        likelihood_reference<mp50>(*sde, model, &data, x, eps, t_max, mp50("1e-24"), 2);
    const Vec<mp50> exact = Marginal<mp50>(*sde, data, eps).log_density(x);
    const double deviation = to_double(mp50((ode - exact).cwiseAbs().maxCoeff()));
    INFO("deviation " << deviation);
    CHECK(deviation < 1e-20);
  }
}

TEST_CASE("kind likelihood: fixed-step orders and adaptive tolerances against the exact log p",
          "[likelihood]") {
  json c = pflow::testing::tiny_config();
  c["kind"] = "likelihood";
  c["target"] = {{"type", "gmm"},
                 {"weights", {0.4, 0.6}},
                 {"means", {{-1.0, 0.5}, {1.0, -0.5}}},
                 {"diag_covs", {{0.2, 0.3}, {0.3, 0.2}}}};
  c["init"] = {{"count", 4}, {"seed", 1}};
  c["solvers"] = {"rk4", "dopri5", {{"name", "rkf78"}, {"adaptive", true}}};
  c["nfe"] = {192, 384, 768, 1536};
  c["tolerances"] = {1e-8, 1e-12};
  const ExperimentResult r = run_experiment(parse_experiment(c), {});
  CHECK_THAT(r.reference_method, Catch::Contains("exact log p_eps"));
  CHECK(r.solvers[0].fit.order == Approx(4).margin(0.2));
  // dopri5 is pre-asymptotic on this small mixture (pairwise orders 6.2 ... 4.2, 4.5, 4.8 up
  // to NFE 3072); its order is held on the headline mixture (experiments/vp_gmm2d_likelihood).
  CHECK(r.solvers[1].cells.back().err_max < 1e-10);
  CHECK(r.solvers[2].cells[1].err_max < 1e-10);  // rkf78 at tol 1e-12
  CHECK(r.solvers[2].cells[0].err_max > r.solvers[2].cells[1].err_max);
  // The points are samples of p_eps: the stored log-densities are finite and near the data's.
  for (const double v : r.solvers[0].cells.back().log_density) CHECK(std::isfinite(v));
  REQUIRE(r.solvers[0].cells.back().log_density.size() == 4);
  for (size_t j = 0; j < 4; ++j)
    CHECK(r.solvers[0].cells.back().log_density[j] == Approx(r.reference[j]).margin(1e-7));

  // Refused: a sampler that is not a generic ODE solver, an exact prior without a mixture.
  json bad = c;
  bad["solvers"] = {"ddim"};
  CHECK_THROWS_WITH(parse_experiment(bad), Catch::Contains("not a generic ODE solver"));
  bad = c;
  bad["prior"] = "uniform";
  CHECK_THROWS_WITH(parse_experiment(bad), Catch::Contains("prior"));
  bad = c;
  bad.erase("tolerances");
  CHECK_THROWS_WITH(parse_experiment(bad), Catch::Contains("tolerances"));
}

TEST_CASE("Jacobian-vector products of the score equal central differences in 50 digits",
          "[likelihood]") {
  const json gmm = two_component_mixture();
  for (const json& sde_json : {json{{"type", "vp-linear"}}, json{{"type", "cld"}}}) {
    INFO(sde_json.dump());
    const auto data = make_target<mp50>(gmm, "target");
    const auto sde = make_sde<mp50>(sde_json, 2, "sde");
    Rng rng(5);
    const Mat<mp50> x = rng.normal_matrix<mp50>(sde->state_dim(), 3);
    const Mat<mp50> v = rng.normal_matrix<mp50>(sde->state_dim(), 3);
    const mp50 t("0.3"), h("1e-16");
    const AnalyticDenoiser<mp50> analytic(*sde, data);
    const PerturbedDenoiser<mp50> perturbed(*sde, data, mp50("0.01"), mp50("1.5"));
    for (const Denoiser<mp50>* model : {static_cast<const Denoiser<mp50>*>(&analytic),
                                        static_cast<const Denoiser<mp50>*>(&perturbed)}) {
      const Mat<mp50> exact = model->score_jvp(x, t, v);
      const Mat<mp50> differences =
          (model->score(Mat<mp50>(x + h * v), t) - model->score(Mat<mp50>(x - h * v), t)) / (2 * h);
      CHECK(to_double(mp50((exact - differences).cwiseAbs().maxCoeff())) < 1e-28);
    }
  }
}

TEST_CASE("Hutchinson's estimate of log p_eps lies within 3 standard errors of the exact one",
          "[likelihood]") {
  json c = pflow::testing::tiny_config();
  c["kind"] = "likelihood";
  c["target"] = {{"type", "gmm"},
                 {"weights", {0.4, 0.6}},
                 {"means", {{-1.0, 0.5}, {1.0, -0.5}}},
                 {"diag_covs", {{0.2, 0.3}, {0.3, 0.2}}}};
  c["init"] = {{"points", {{0.2, -0.3}, {-1.0, 0.8}}}};
  c["solvers"] = {"rk4"};
  c["nfe"] = {96};  // rk4 error ~4e-5, far below the standard errors
  for (const char* probes : {"rademacher", "gaussian"}) {
    INFO(probes);
    c["divergence"] = {{"type", "hutchinson"}, {"probes", probes}, {"count", 10000}, {"seed", 3}};
    const ExperimentResult r = run_experiment(parse_experiment(c), {});
    const CellResult& cell = r.solvers[0].cells[0];
    REQUIRE(cell.log_density_se.size() == 2);
    for (size_t j = 0; j < 2; ++j) {
      INFO("point " << j << ": " << cell.log_density[j] << " +- " << cell.log_density_se[j]
                    << " against " << r.reference[j]);
      CHECK(std::abs(cell.log_density[j] - r.reference[j]) < 3 * cell.log_density_se[j]);
      // A real estimate, not the exact trace; Rademacher probes have the smaller variance (no
      // diagonal term): measured 0.0125 against 0.10 for Gaussian probes at point 0.
      CHECK(cell.log_density_se[j] > 1e-6);
      CHECK(cell.log_density_se[j] < 0.5);
    }
  }
}
