// Guidance on labelled mixtures: the exact classifier and its gradient, classifier guidance and
// classifier-free guidance against the conditional score, and the guided PF-ODE's orders.
#include "helpers.hpp"
#include "pflow/experiment/run.hpp"
#include "pflow/experiment/table.hpp"
#include "pflow/model/denoisers.hpp"
#include "pflow/sde/factory.hpp"

using namespace pflow;
using json = nlohmann::json;

using pflow::testing::labelled_mixture;

TEST_CASE("labelled mixtures: conditional data and the exact classifier", "[guidance]") {
  const auto data = make_target<double>(labelled_mixture(), "target");
  CHECK(data.labels() == std::vector<int>{0, 1, 0});
  const GaussianMixture<double> zero = data.conditional(0);
  REQUIRE(zero.components() == 2);
  CHECK(zero.weights()(0) == Approx(0.3 / 0.55).epsilon(1e-15));
  CHECK(zero.weights()(1) == Approx(0.25 / 0.55).epsilon(1e-15));
  CHECK(zero.means()(1, 1) == -1.0);
  CHECK_THROWS_WITH(data.conditional(4), Catch::Contains("label = 4"));
  json bad = labelled_mixture();
  bad["labels"] = {0, 1};
  CHECK_THROWS_WITH(make_target<double>(bad, "target"), Catch::Contains("target.labels = 2"));
  bad["labels"] = {0, -1, 0};
  CHECK_THROWS_WITH(make_target<double>(bad, "target"), Catch::Contains("target.labels[1]"));

  // p_t(y | x) sums to one over the classes, and log p_t(x | y) + log p(y) - log p_t(x) is it.
  const auto sde = make_sde<double>(json{{"type", "vp-linear"}}, 2, "sde");
  const double t = 0.3;
  Rng rng(9);
  const Mat<double> x = rng.normal_matrix<double>(2, 5);
  const Marginal<double> full(*sde, data, t);
  const Vec<double> p0 = full.class_log_posterior(x, 0).array().exp();
  const Vec<double> p1 = full.class_log_posterior(x, 1).array().exp();
  CHECK(((p0 + p1).array() - 1).abs().maxCoeff() < 1e-15);
  const Vec<double> bayes = Marginal<double>(*sde, zero, t).log_density(x).array() +
                            std::log(0.55) - full.log_density(x).array();
  CHECK((bayes - full.class_log_posterior(x, 0)).cwiseAbs().maxCoeff() < 1e-14);
}

TEST_CASE("the classifier's gradient equals central differences in 50 digits", "[guidance]") {
  for (const json& sde_json : {json{{"type", "vp-linear"}}, json{{"type", "cld"}}}) {
    INFO(sde_json.dump());
    const auto data = make_target<mp50>(labelled_mixture(), "target");
    const auto sde = make_sde<mp50>(sde_json, 2, "sde");
    const Marginal<mp50> m(*sde, data, mp50("0.2"));
    Rng rng(4);
    const Mat<mp50> x = rng.normal_matrix<mp50>(sde->state_dim(), 3);
    const Mat<mp50> grad = m.class_score(x, 1);
    const mp50 h("1e-16");
    for (Eigen::Index i = 0; i < x.rows(); ++i) {
      Mat<mp50> up = x, down = x;
      up.row(i).array() += h;
      down.row(i).array() -= h;
      const Vec<mp50> diff =
          (m.class_log_posterior(up, 1) - m.class_log_posterior(down, 1)) / (2 * h);
      CHECK(to_double(mp50((diff.transpose() - grad.row(i)).cwiseAbs().maxCoeff())) < 1e-28);
    }
  }
}

TEST_CASE("classifier guidance at w = 1 and CFG at w = 0 give the conditional score",
          "[guidance]") {
  for (const json& sde_json : {json{{"type", "vp-linear"}}, json{{"type", "cld"}}}) {
    INFO(sde_json.dump());
    const auto data = make_target<double>(labelled_mixture(), "target");
    const auto sde = make_sde<double>(sde_json, 2, "sde");
    Rng rng(6);
    const Mat<double> x = 2 * rng.normal_matrix<double>(sde->state_dim(), 16);
    for (const double t : {0.01, 0.2, 0.9}) {
      INFO("t = " << t);
      const Mat<double> conditional = Marginal<double>(*sde, data.conditional(0), t).score(x);
      const double scale = std::max(1.0, conditional.cwiseAbs().maxCoeff());
      const GuidedDenoiser<double> cg(*sde, data, 0, 1.0, true), cfg(*sde, data, 0, 0.0, false);
      CHECK((cg.score(x, t) - conditional).cwiseAbs().maxCoeff() < 1e-12 * scale);
      CHECK((cfg.score(x, t) - conditional).cwiseAbs().maxCoeff() == 0);
      // Classifier guidance at w is CFG at w - 1; their divergences agree as well.
      const GuidedDenoiser<double> cg3(*sde, data, 0, 3.0, true), cfg2(*sde, data, 0, 2.0, false);
      CHECK((cg3.score(x, t) - cfg2.score(x, t)).cwiseAbs().maxCoeff() < 1e-12 * scale);
      const BlockMatrix<double> w = sde->diffusion(t).scaled(0.5);
      CHECK((cg3.score_divergence(x, t, w) - cfg2.score_divergence(x, t, w)).cwiseAbs().maxCoeff() <
            1e-10 * scale);
    }
  }
}

TEST_CASE("the guided probability-flow ODE keeps every listed solver's order",
          "[guidance][mp50-long]") {
  json c = pflow::testing::tiny_config();
  c["target"] = labelled_mixture();
  c["denoiser"] = {{"type", "guided"}, {"label", 0}, {"scale", 2.0}};
  pflow::testing::use_guided_order_ladder(c);
  const ExperimentResult r = run_experiment(parse_experiment(c), {});
  CHECK_THAT(r.reference_method, Catch::Contains("cfg"));
  CHECK(r.analytic_flow.empty());  // no split against the data's flow
  const auto& declared = pflow::testing::guided_ladder_orders;
  for (size_t i = 0; i < r.solvers.size(); ++i) {
    INFO(r.solvers[i].label << ": fitted " << r.solvers[i].fit.order);
    CHECK(r.solvers[i].fit.order >= declared[i] - 0.2);
    CHECK(r.solvers[i].fit.order <= declared[i] + 0.3);
  }
}

TEST_CASE("guided configs are validated by field", "[guidance]") {
  json c = pflow::testing::tiny_config();
  c["target"] = labelled_mixture();
  c["denoiser"] = {{"type", "guided"}, {"label", 1}, {"scale", 4.0}, {"guidance", "classifier"}};
  const ExperimentConfig ok = parse_experiment(c);
  CHECK(ok.denoiser ==
        json{{"type", "guided"}, {"label", 1}, {"scale", 4.0}, {"guidance", "classifier"}});
  json bad = c;
  bad["denoiser"]["label"] = 3;
  CHECK_THROWS_WITH(parse_experiment(bad),
                    Catch::Contains("denoiser.label = 3: labels no component of the target "
                                    "(labels: 0, 1, 0)"));
  bad = c;
  bad["target"].erase("labels");
  CHECK_THROWS_WITH(parse_experiment(bad), Catch::Contains("needs a gmm target with \"labels\""));
  bad = c;
  bad["denoiser"]["scale"] = -1;
  CHECK_THROWS_WITH(parse_experiment(bad), Catch::Contains("denoiser.scale = -1"));
  bad = c;
  bad["denoiser"]["guidance"] = "autoguidance";
  CHECK_THROWS_WITH(parse_experiment(bad), Catch::Contains("denoiser.guidance"));
}

// At w = 0 CFG is the exact conditional flow, so its samples are samples of p(x | y), the tilted
// density at w = 0; at w > 0 they are not samples of the tilted density.
TEST_CASE("kind guidance: exact at w = 0, away from the tilted density at w = 2", "[guidance]") {
  json c = pflow::testing::tiny_config();
  c["kind"] = "guidance";
  c["target"] = labelled_mixture();
  c["init"] = {{"count", 400}, {"seed", 2}};
  c["guidance"] = {{"label", 1}, {"scales", {0.0, 2.0}}, {"grid", 300}};
  c["solvers"] = {"dpm-solver++-2m"};
  c["nfe"] = {96};
  c["projections"] = 64;
  c["replicates"] = 4;
  const ExperimentResult r = run_experiment(parse_experiment(c), {});
  std::map<std::string, std::vector<double>> reference;
  for (const Table& t : r.tables) reference[t.path] = t.data;
  // The grid density at w = 0 is the single Gaussian of class 1: trace of its covariance 0.9.
  CHECK(reference["/reference/tilted_spread"][0] == Approx(0.9).margin(1e-3));
  CHECK(reference["/reference/tilted_boundary_mass"][1] < 1e-12);
  const CellResult& cell = r.solvers[0].cells[0];
  const double p = reference["/reference/tilted_in_class"][0];
  CHECK(std::abs(cell.series.at("in_class")[0] - p) < 3 * std::sqrt(p * (1 - p) / 400));
  CHECK(cell.series.at("sw2")[0] < 1.5 * reference["/reference/sw2_floor"][0]);
  CHECK(cell.series.at("sw2")[1] > 3 * reference["/reference/sw2_floor"][1]);
  CHECK(cell.series.at("spread")[1] < reference["/reference/tilted_spread"][1]);
  CHECK(cell.series.at("samples").size() == 2 * 400 * 2);

  // Classifier guidance at w = 1 is the exact conditional flow: its tilt exponent is w - 1 = 0.
  json classifier = c;
  classifier["guidance"] = {
      {"label", 1}, {"scales", {1.0}}, {"grid", 300}, {"method", "classifier"}};
  const ExperimentResult rc = run_experiment(parse_experiment(classifier), {});
  std::map<std::string, std::vector<double>> rc_reference;
  for (const Table& t : rc.tables) rc_reference[t.path] = t.data;
  CHECK(rc_reference["/reference/tilted_spread"][0] == Approx(0.9).margin(1e-3));
  const CellResult& rc_cell = rc.solvers[0].cells[0];
  CHECK(rc_cell.series.at("sw2")[0] < 1.5 * rc_reference["/reference/sw2_floor"][0]);
  CHECK(std::abs(rc_cell.series.at("in_class")[0] - cell.series.at("in_class")[0]) < 0.01);

  const std::string path = pflow::testing::temp_path("guidance.h5");
  write_result(r, path);
  CHECK(result_table(path, "markdown", "") == result_table(r, "markdown", ""));
  CHECK_THAT(result_table(path, "csv", ""), Catch::Contains("dpm-solver++-2m,96,2,"));
  std::remove(path.c_str());

  json bad = c;
  bad["denoiser"] = {{"type", "guided"}, {"label", 1}};
  CHECK_THROWS_WITH(parse_experiment(bad), Catch::Contains("use \"analytic\""));
  bad = c;
  bad["guidance"]["label"] = 7;
  CHECK_THROWS_WITH(parse_experiment(bad), Catch::Contains("guidance.label = 7"));
  bad = c;
  bad["guidance"]["scales"] = {1.0, -2.0};
  CHECK_THROWS_WITH(parse_experiment(bad), Catch::Contains("guidance.scales[1] = -2"));
  bad["guidance"]["scales"] = {1.0, 0.5};
  CHECK_THROWS_WITH(parse_experiment(bad), Catch::Contains("scales must increase"));
}
