// Inversion (encoding data -> noise) and its round trip: the exact flow map against itself, the
// solvers on increasing grids, kind "inversion" end to end; interpolation paths and kind
// "interpolation".
#include "helpers.hpp"
#include "pflow/experiment/h5.hpp"
#include "pflow/experiment/kinds/interpolation.hpp"
#include "pflow/experiment/run.hpp"
#include "pflow/experiment/table.hpp"
#include "pflow/flow/exact_flow.hpp"
#include "pflow/flow/interpolation.hpp"
#include "pflow/sampler/registry.hpp"
#include "pflow/sde/factory.hpp"

using namespace pflow;
using json = nlohmann::json;

TEST_CASE("the exact flow map's round trip is the identity to 1e-12", "[inversion]") {
  const json gaussian2 = {
      {"type", "gaussian"}, {"mean", {0.5, -1.0}}, {"cov", {{1.0, 0.8}, {0.8, 0.9}}}};
  const json gaussian1 = {{"type", "gaussian"}, {"mean", {0.7}}, {"cov", {{0.5}}}};
  const std::vector<std::pair<json, json>> cases = {
      {{{"type", "vp-linear"}}, gaussian2},
      {{{"type", "ve"}, {"sigma_min", 0.01}, {"sigma_max", 50.0}}, gaussian2},
      {{{"type", "cld"}}, gaussian1}};
  for (const auto& [sde_json, target] : cases) {
    INFO(sde_json.dump());
    const auto data = make_target<double>(target, "target");
    const auto sde = make_sde<double>(sde_json, data.dim(), "sde");
    Rng rng(5);
    const Mat<double> x = rng.normal_matrix<double>(sde->state_dim(), 8);
    const double eps = 1e-3, t_max = 1.0;
    const Mat<double> encoded = exact_flow_map(*sde, data, x, eps, t_max);
    const Mat<double> back = exact_flow_map(*sde, data, encoded, t_max, eps);
    CHECK((back - x).cwiseAbs().maxCoeff() < 1e-12);
    CHECK((encoded - x).cwiseAbs().maxCoeff() > 0.1);  // the map moved the points
  }
}

TEST_CASE("stochastic solvers refuse an increasing grid, deterministic ones run on it",
          "[inversion]") {
  const auto data =
      make_target<double>(json{{"type", "gaussian"}, {"mean", {0.5}}, {"cov", {{0.6}}}}, "target");
  const auto sde = make_sde<double>(json{{"type", "vp-linear"}}, 1, "sde");
  const AnalyticDenoiser<double> model(*sde, data);
  Problem<double> problem;
  problem.sde = sde.get();
  problem.model = &model;
  const std::vector<double> up = {0.01, 0.1, 0.5, 1.0};
  const Mat<double> x = Mat<double>::Constant(1, 2, 0.3);
  CHECK_THROWS_WITH(solve(*make_solver<double>(json("ddpm")), problem, up, x),
                    Catch::Contains("solver = ddpm: cannot run forwards"));
  CHECK_THROWS_WITH(solve(*make_solver<double>(json("ddim")), problem, {0.01, 0.5, 0.1, 1.0}, x),
                    Catch::Contains("times must increase strictly"));
  // ddim forwards approaches the exact map: 10 times the steps, about a tenth of the error.
  const Mat<double> exact = exact_flow_map(*sde, data, x, 0.01, 1.0);
  const auto ddim = make_solver<double>(json("ddim"));
  const SolveResult<double> coarse = solve(*ddim, problem, up, x);
  const auto fine_grid = make_time_grid<double>(*sde, GridSpec{}, 1.0, 0.01, 30);
  const SolveResult<double> fine =
      solve(*ddim, problem, std::vector<double>(fine_grid.rbegin(), fine_grid.rend()), x);
  const double coarse_error = (coarse.x - exact).cwiseAbs().maxCoeff();
  const double fine_error = (fine.x - exact).cwiseAbs().maxCoeff();
  CHECK(coarse.nfe == 3);
  CHECK(coarse_error < 0.2);
  CHECK(fine_error < coarse_error / 5);
}

TEST_CASE("kind inversion: exact encodings, round trips and their orders", "[inversion]") {
  json c = pflow::testing::tiny_config();
  c["kind"] = "inversion";
  c["init"] = {{"count", 5}, {"seed", 4}};  // samples of p_eps
  c["solvers"] = {"ddim", "dpm-solver-2", "dpm-solver++-2m", "rk4"};
  c["nfe"] = {64, 128, 256, 512};
  const ExperimentResult r = run_experiment(parse_experiment(c), {});
  CHECK_THAT(r.reference_method, Catch::Contains("exact flow map"));
  CHECK(r.exact_roundtrip_max < 1e-12);
  const int declared[] = {1, 2, 2, 4};
  // Round trips of one-step methods: the leading error terms of the two directions cancel for
  // even orders. The multistep dpm-solver++-2m's first-order start step keeps it near 2 here.
  const double roundtrip[] = {1, 3, 2, 5};
  for (size_t i = 0; i < r.solvers.size(); ++i) {
    const SolverRun& s = r.solvers[i];
    INFO(s.label << ": encoding order " << s.fit.order << ", round trip " << s.roundtrip_fit.order);
    CHECK(s.fit.order == Approx(declared[i]).margin(0.2));
    CHECK(s.roundtrip_fit.order >= roundtrip[i] - 0.2);
    CHECK(s.roundtrip_fit.order <= roundtrip[i] + 0.5);
    for (const CellResult& cell : s.cells) {
      CHECK_FALSE(cell.failed);
      CHECK(cell.x_decoded.size() == 5 * 2);
      CHECK(cell.roundtrip_max < 0.1);
    }
  }
  // The reference is the encoding x_T: the exact map from the points at t_end to t_start.
  const ExperimentConfig config = parse_experiment(c);
  const auto data = make_target<double>(c["target"], "target");
  const auto sde = make_sde<double>(c["sde"], 2, "sde");
  Mat<double> x0(2, 5), ref(2, 5);
  for (int j = 0; j < 5; ++j)
    for (int i = 0; i < 2; ++i) {
      x0(i, j) = r.init[j * 2 + i];
      ref(i, j) = r.reference[j * 2 + i];
    }
  CHECK((exact_flow_map(*sde, data, x0, config.t_end, config.t_start) - ref).cwiseAbs().maxCoeff() <
        1e-14);

  const std::string path = pflow::testing::temp_path("inversion.h5");
  write_result(r, path);
  const h5::File f = h5::File::open(path);
  std::vector<size_t> shape;
  f.read("/solvers/rk4/x_decoded", &shape);
  CHECK(shape == std::vector<size_t>{4, 5, 2});
  CHECK(f.read("/solvers/rk4/roundtrip_max") ==
        std::vector<double>{
            r.solvers[3].cells[0].roundtrip_max, r.solvers[3].cells[1].roundtrip_max,
            r.solvers[3].cells[2].roundtrip_max, r.solvers[3].cells[3].roundtrip_max});
  CHECK(f.read_double("/solvers/rk4", "roundtrip_fitted_order") ==
        r.solvers[3].roundtrip_fit.order);
  CHECK(f.read_double("/reference", "exact_roundtrip_max") == r.exact_roundtrip_max);
  CHECK_THAT(result_table(path, "markdown", "roundtrip_max"), Catch::Contains("| rk4 | 4 | "));
  CHECK_THROWS_WITH(result_table(path, "markdown", "sw2"), Catch::Contains("--metric"));
  std::remove(path.c_str());

  // Refused at validation: a solver that cannot run forwards, named by its place in the list.
  json bad = c;
  bad["solvers"] = {"ddim", {{"name", "ddim"}, {"eta", 0.5}}};
  CHECK_THROWS_WITH(parse_experiment(bad),
                    Catch::Contains("solvers[1] = ddim(eta=0.5): cannot run forwards"));
}

TEST_CASE("slerp and linear paths return their endpoints exactly and keep slerp's norm",
          "[inversion][interpolation]") {
  const Vec<double> a = (Vec<double>(3) << 0.3, -1.2, 0.8).finished();
  const Vec<double> b = (Vec<double>(3) << -0.9, 0.4, 1.1).finished();
  for (const char* method : {"slerp", "linear"}) {
    INFO(method);
    CHECK((interpolate<double>(a, b, 0.0, method) - a).cwiseAbs().maxCoeff() <= 1e-15);
    CHECK((interpolate<double>(a, b, 1.0, method) - b).cwiseAbs().maxCoeff() <= 1e-15);
    const Vec<mp50> a50 = a.cast<mp50>(), b50 = b.cast<mp50>();
    CHECK((interpolate<mp50>(a50, b50, mp50(0), method) - a50).cwiseAbs().maxCoeff() == 0);
    CHECK((interpolate<mp50>(a50, b50, mp50(1), method) - b50).cwiseAbs().maxCoeff() == 0);
  }
  // On a sphere (|a| = |b|) slerp stays on it; the line cuts inside.
  const Vec<double> c = b * (a.norm() / b.norm());
  for (double u : {0.25, 0.5, 0.75}) {
    CHECK(interpolate<double>(a, c, u, "slerp").norm() == Approx(a.norm()).epsilon(1e-14));
    CHECK(interpolate<double>(a, c, u, "linear").norm() < a.norm() * 0.99);
  }
  CHECK_THROWS_WITH(interpolate<double>(a, Vec<double>(-a), 0.5, "slerp"),
                    Catch::Contains("opposite directions"));
  Vec<double> u;
  const Mat<double> path = interpolation_path<double>(a, b, 5, "slerp", &u);
  CHECK(path.cols() == 5);
  CHECK(u(2) == 0.5);
}

TEST_CASE("the Illinois root finder brackets and converges superlinearly",
          "[inversion][interpolation]") {
  int calls = 0;
  auto g = [&](double x) {
    ++calls;
    return std::cos(x) - 0.3;
  };
  const double root = detail::illinois_root<double>(g, 0.0, 3.0, g(0.0), g(3.0), 1e-15);
  CHECK(std::abs(root - std::acos(0.3)) < 1e-14);
  CHECK(calls < 20);
  // A bracket end exactly on the root (a path point on the boundary) is the root.
  CHECK(detail::illinois_root<double>(g, std::acos(0.3), 3.0, 0.0, g(3.0), 1e-15) ==
        std::acos(0.3));
  CHECK(detail::illinois_root<double>(g, 0.0, 1.0, g(0.0), 0.0, 1e-15) == 1.0);
}

// A symmetric two-component 1-D mixture: the flow is odd, so the decoded path between the
// latents z and -z crosses the decision boundary (x = 0) at u = 1/2 exactly, for the 50-digit
// flow and for every solver at every NFE.
TEST_CASE("kind interpolation: a symmetric mixture switches component at u = 1/2",
          "[inversion][interpolation]") {
  json c = pflow::testing::tiny_config();
  c["kind"] = "interpolation";
  c["target"] = {{"type", "gmm"},
                 {"weights", {0.5, 0.5}},
                 {"means", {{-1.0}, {1.0}}},
                 {"covs", {{{0.3}}, {{0.3}}}}};
  c["init"] = {{"points", {{-1.1}, {1.1}}}};
  c["interpolation"] = {{"method", "linear"}, {"count", 4}};
  c["solvers"] = {"ddim", "dpm-solver-2", "rk4"};
  c["nfe"] = {12, 24};
  const ExperimentResult r = run_experiment(parse_experiment(c), {});
  REQUIRE(r.reference_switches.size() == 1);
  CHECK(std::abs(r.reference_switches[0] - 0.5) < 1e-13);
  CHECK(r.reference_switch_pairs == std::vector<double>{0, 1});
  CHECK(r.reference_components == std::vector<double>{0, 0, 1, 1});
  CHECK(r.latents.size() == 2);
  CHECK(r.latents[0] == -r.latents[1]);
  for (const SolverRun& s : r.solvers)
    for (const CellResult& cell : s.cells) {
      INFO(s.label << " at NFE " << cell.nfe);
      REQUIRE(cell.switches.size() == 1);
      CHECK(std::abs(cell.switches[0] - 0.5) < 1e-12);
      CHECK(cell.switch_error < 1e-12);
    }

  // Refused: not two points, a path of two points, a data set, the field on another kind.
  json bad = c;
  bad["init"] = {{"points", {{-1.1}, {0.0}, {1.1}}}};
  CHECK_THROWS_WITH(parse_experiment(bad), Catch::Contains("exactly two points"));
  bad = c;
  bad["interpolation"]["count"] = 2;
  CHECK_THROWS_WITH(parse_experiment(bad), Catch::Contains("interpolation.count = 2"));
  bad = c;
  bad["kind"] = "convergence";
  CHECK_THROWS_WITH(parse_experiment(bad), Catch::Contains("applies to kind \"interpolation\""));
  bad = c;
  bad["solvers"] = {"ddim", "ddpm"};
  CHECK_THROWS_WITH(parse_experiment(bad), Catch::Contains("solvers[1] = ddpm: is stochastic"));
}
