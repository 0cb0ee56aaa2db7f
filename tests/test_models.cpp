// Learned and perturbed denoisers: the MLP forward against closed forms and across precisions,
// the output-to-score conversions against the analytic marginal, the perturbed score, the SDE
// comparison, and whole runs with a model file (the reference is the model's own flow, the error
// split is stored and consistent).
#include <filesystem>
#include <fstream>

#include "helpers.hpp"
#include "pflow/experiment/h5.hpp"
#include "pflow/experiment/run.hpp"
#include "pflow/flow/likelihood.hpp"
#include "pflow/model/denoisers.hpp"
#include "pflow/model/mlp_file.hpp"
#include "pflow/sde/factory.hpp"

using namespace pflow;
using json = nlohmann::json;
using pflow::testing::temp_path;
using pflow::testing::tiny_config;

namespace {

// A network with random weights (seeded): D inputs, `depth` hidden layers of `width`, and
// `classes` one-hot label inputs.
MlpModel random_mlp(int dim, int width, int depth, Activation act, std::vector<double> freqs,
                    unsigned seed, int classes = 0) {
  MlpModel m;
  m.dim = dim;
  m.activation = act;
  m.frequencies = std::move(freqs);
  m.classes = classes;
  std::srand(seed);
  int in = m.input_width();
  for (int l = 0; l <= depth; ++l) {
    const int out = l == depth ? dim : width;
    m.weights.push_back(Mat<double>::Random(out, in) / std::sqrt(double(in)));
    m.biases.push_back(Vec<double>::Random(out) / 4);
    in = out;
  }
  return m;
}

// Writes a model in format 1 with h5::File (no /check datasets).
void write_model_file(const MlpModel& m, const json& sde, const json& target,
                      const std::string& path, const std::string& output = "eps") {
  h5::File f = h5::File::create(path);
  f.attribute("/", "format", std::string("pflow-denoiser"));
  f.attribute("/", "format_version", 1.0);
  f.attribute("/", "architecture", std::string("mlp"));
  f.attribute("/", "output", output);
  f.attribute("/", "activation", activation_names()[static_cast<int>(m.activation)]);
  f.attribute("/", "time_input", std::string("t"));
  f.attribute("/", "time_embedding", std::string(R"({"type": "raw"})"));
  f.attribute("/", "sde", sde.dump());
  f.attribute("/", "target", target.dump());
  f.attribute("/", "training", std::string("{}"));
  if (m.classes > 0) f.attribute("/", "classes", static_cast<double>(m.classes));
  f.group("/layers");
  for (int l = 0; l < m.layers(); ++l) {
    const std::string g = "/layers/" + std::to_string(l);
    f.group(g);
    const Mat<double>& w = m.weights[l];
    std::vector<double> rows(static_cast<size_t>(w.size()));
    for (Eigen::Index i = 0; i < w.rows(); ++i)
      for (Eigen::Index j = 0; j < w.cols(); ++j) rows[i * w.cols() + j] = w(i, j);
    f.dataset(g + "/weight", {size_t(w.rows()), size_t(w.cols())}, rows);
    f.dataset(g + "/bias", {size_t(m.biases[l].size())},
              std::vector<double>(m.biases[l].data(), m.biases[l].data() + m.biases[l].size()));
  }
  // Check data, when the model has them: points, times, labels and outputs.
  if (m.check_x.cols() > 0) {
    const size_t n = static_cast<size_t>(m.check_x.cols()), d = static_cast<size_t>(m.dim);
    f.group("/check");
    const Mat<double> xt = m.check_x.transpose(), outt = m.check_output.transpose();
    std::vector<double> x(n * d), out(n * d);
    for (size_t j = 0; j < n; ++j)
      for (size_t i = 0; i < d; ++i) {
        x[j * d + i] = xt(Eigen::Index(j), Eigen::Index(i));
        out[j * d + i] = outt(Eigen::Index(j), Eigen::Index(i));
      }
    f.dataset("/check/x", {n, d}, x);
    f.dataset("/check/output", {n, d}, out);
    f.dataset("/check/t", {n}, std::vector<double>(m.check_t.data(), m.check_t.data() + n));
    if (!m.check_labels.empty())
      f.dataset("/check/label", {n},
                std::vector<double>(m.check_labels.begin(), m.check_labels.end()));
  }
  f.save();
}

}  // namespace

TEST_CASE("MLP forward: one hidden unit by hand, every activation", "[models]") {
  // out = d act(a x + b t + c) + e for D = 1 with the raw embedding.
  const double a = 0.7, b = -1.3, c = 0.2, d = 1.9, e = -0.4, x = 0.8, t = 0.35;
  const double h = a * x + b * t + c;
  const std::vector<std::pair<Activation, double>> cases = {
      {Activation::silu, h / (1 + std::exp(-h))},
      {Activation::gelu, h * (1 + std::erf(h / std::sqrt(2.0))) / 2},
      {Activation::tanh, std::tanh(h)},
      {Activation::softplus, std::log1p(std::exp(h))},
      {Activation::relu, std::max(h, 0.0)}};
  for (const auto& [act, value] : cases) {
    MlpModel m;
    m.dim = 1;
    m.activation = act;
    m.weights = {(Mat<double>(1, 2) << a, b).finished(), Mat<double>::Constant(1, 1, d)};
    m.biases = {Vec<double>::Constant(1, c), Vec<double>::Constant(1, e)};
    const Mat<double> out =
        MlpNetwork<double>(m).forward(Mat<double>::Constant(1, 1, x), Vec<double>::Constant(1, t));
    CHECK(out(0, 0) == Approx(d * value + e).epsilon(1e-15));
  }
  // Fourier embedding: [x; sin(f tau); cos(f tau)] for one frequency.
  MlpModel m;
  m.dim = 1;
  m.activation = Activation::relu;
  m.frequencies = {3.0};
  m.weights = {(Mat<double>(1, 3) << 1.0, 2.0, -1.0).finished(), Mat<double>::Identity(1, 1)};
  m.biases = {Vec<double>::Constant(1, 5.0), Vec<double>::Zero(1)};
  const Mat<double> out =
      MlpNetwork<double>(m).forward(Mat<double>::Constant(1, 1, x), Vec<double>::Constant(1, t));
  CHECK(out(0, 0) == Approx(x + 2 * std::sin(3 * t) - std::cos(3 * t) + 5).epsilon(1e-15));
}

TEST_CASE("MLP forward in 50 digits equals the double forward to 1e-14", "[models]") {
  for (Activation act : {Activation::silu, Activation::gelu, Activation::tanh, Activation::softplus,
                         Activation::relu}) {
    const MlpModel m = random_mlp(3, 32, 3, act, {1.0, 4.0, 16.0}, 11);
    std::srand(5);
    const Mat<double> x = Mat<double>::Random(3, 50) * 2;
    const Vec<double> tau = (Vec<double>::Random(50).array() + 1) / 2;
    const Mat<double> dbl = MlpNetwork<double>(m).forward(x, tau);
    const Mat<mp50> mp = MlpNetwork<mp50>(m).forward(x.cast<mp50>(), tau.cast<mp50>());
    const double rel = testing::max_diff(mp.cast<double>(), dbl) / dbl.cwiseAbs().maxCoeff();
    INFO("activation " << activation_names()[static_cast<int>(act)] << ": " << rel);
    CHECK(rel < 1e-14);
    CHECK(rel > 0);  // the double forward has round-off; the 50-digit one has none at 1e-16
  }
}

TEST_CASE("eps, x0, v and velocity outputs give the analytic score back", "[models]") {
  const json gmm = {{"type", "gmm"},
                    {"weights", {0.3, 0.7}},
                    {"means", {{-1.0, 0.3}, {0.8, 0.8}}},
                    {"covs", {{{0.5, 0.2}, {0.2, 0.35}}, {{0.6, -0.2}, {-0.2, 0.3}}}}};
  const auto data = make_target<double>(gmm, "target");
  std::srand(9);
  const Mat<double> x = Mat<double>::Random(2, 20) * 2;
  for (const char* type : {"vp-linear", "sub-vp", "ve", "edm", "rectified-flow"}) {
    const auto sde = make_sde<double>(json{{"type", type}}, 2, "sde");
    const auto& scalar = dynamic_cast<const ScalarSde<double>&>(*sde);
    const double t = std::string(type) == "edm" ? 1.7 : 0.4;
    const Marginal<double> p(*sde, data, t);
    const Mat<double> score = p.score(x);
    INFO(type);
    auto to_score = [&](ModelOutput kind, const Mat<double>& out) {
      return convert_output(kind, ModelOutput::score, out, x, &scalar, t);
    };
    const double scale = score.cwiseAbs().maxCoeff();
    CHECK(testing::max_diff(to_score(ModelOutput::eps, p.eps(x)), score) < 1e-12 * scale);
    CHECK(testing::max_diff(to_score(ModelOutput::x0, p.x0(x)), score) < 1e-12 * scale);
    CHECK(testing::max_diff(to_score(ModelOutput::v, p.v(x)), score) < 1e-12 * scale);
    // The probability-flow velocity f x - g^2/2 score, written out here.
    const Mat<double> velocity = scalar.f(t) * x - scalar.g2(t) / 2 * score;
    CHECK(testing::max_diff(to_score(ModelOutput::velocity, velocity), score) < 1e-12 * scale);
  }
}

TEST_CASE("the perturbed score is the analytic one plus delta sin(omega sum x + t + i)",
          "[models]") {
  const auto sde = make_sde<double>(json{{"type", "vp-linear"}}, 2, "sde");
  const auto data = make_target<double>(
      json{{"type", "gaussian"}, {"mean", {0.5, -1.0}}, {"cov", {{1.0, 0.8}, {0.8, 0.9}}}},
      "target");
  const AnalyticDenoiser<double> exact(*sde, data);
  const PerturbedDenoiser<double> perturbed(*sde, data, 1e-3, 2.5);
  const Mat<double> x = (Mat<double>(2, 2) << 0.3, -1.2, 0.7, 0.4).finished();
  const Mat<double> diff = perturbed.score(x, 0.6) - exact.score(x, 0.6);
  for (int j = 0; j < 2; ++j)
    for (int i = 0; i < 2; ++i)
      CHECK(diff(i, j) ==
            Approx(1e-3 * std::sin(2.5 * (x(0, j) + x(1, j)) + 0.6 + i)).epsilon(1e-9));
}

TEST_CASE("same_kernel tells SDEs apart by Psi and Sigma", "[models]") {
  auto sde = [](const json& j) { return make_sde<double>(j, 2, "sde"); };
  const auto defaults = sde({{"type", "vp-linear"}});
  CHECK(same_kernel(*defaults, *sde({{"type", "vp-linear"}, {"beta_min", 0.1}, {"beta_max", 20}}),
                    1e-3, 1));
  CHECK_FALSE(same_kernel(*defaults, *sde({{"type", "vp-linear"}, {"beta_max", 19.9}}), 1e-3, 1));
  CHECK_FALSE(same_kernel(*defaults, *sde({{"type", "sub-vp"}}), 1e-3, 1));
}

TEST_CASE("a learned model's run: its own flow is the reference and the error split is stored",
          "[models]") {
  json c = tiny_config();
  const MlpModel m = random_mlp(2, 8, 1, Activation::silu, {}, 3);
  const std::string model_path = temp_path("model.h5");
  write_model_file(m, c["sde"], c["target"], model_path);
  c["denoiser"] = {{"type", "mlp"}, {"path", model_path}};
  c["solvers"] = {"ddim", "dpm-solver-2"};
  c["init"] = {{"points", {{0.3, -1.1}}}};
  const ExperimentResult r = run_experiment(parse_experiment(c), {});
  CHECK_THAT(r.reference_method, Catch::Contains("model's own PF-ODE"));
  REQUIRE(r.analytic_flow.size() == r.reference.size());
  CHECK(r.analytic_method == "exact flow map (50 digits)");
  // A random network is far from the data's score: the model error is large.
  CHECK(r.model_error_max > 0.1);
  for (const SolverRun& run : r.solvers) {
    INFO(run.label);
    CHECK(run.fit.order == Approx(run.declared_order).margin(0.2));
    for (const CellResult& cell : run.cells) {
      // Triangle inequality, coordinate by coordinate.
      CHECK(cell.err_total_max <= cell.err_max + r.model_error_max + 1e-14);
      CHECK(cell.err_total_max >= r.model_error_max - cell.err_max - 1e-14);
    }
    // The knee: every level from it on is below the model error, the one before it is not.
    REQUIRE(run.knee_nfe > 0);
    size_t knee = 0;
    while (knee < run.cells.size() && run.cells[knee].nfe != run.knee_nfe) ++knee;
    REQUIRE(knee < run.cells.size());
    for (size_t i = knee; i < run.cells.size(); ++i)
      CHECK(run.cells[i].err_max < r.model_error_max);
    if (knee > 0) CHECK(run.cells[knee - 1].err_max >= r.model_error_max);
  }
  const std::string out = temp_path("model_run.h5");
  write_result(r, out);
  const h5::File f = h5::File::open(out);
  CHECK(f.read_double("/reference", "model_error_max") == r.model_error_max);
  CHECK(f.read("/solvers/ddim/err_total_max").size() == 4);
  CHECK(f.read_double("/solvers/ddim", "knee_nfe") == r.solvers[0].knee_nfe);
  CHECK(f.read_string("/", "denoiser_sha256").size() == 64);
  std::filesystem::remove(out);

  // A model trained for another SDE is refused unless allowed.
  write_model_file(m, {{"type", "vp-linear"}, {"beta_max", 10.0}}, c["target"], model_path);
  CHECK_THROWS_WITH(run_experiment(parse_experiment(c), {}),
                    Catch::Contains("was trained for the SDE"));
  c["denoiser"]["allow_sde_mismatch"] = true;
  CHECK_NOTHROW(run_experiment(parse_experiment(c), {}));
  // So is one trained on another target.
  write_model_file(m, c["sde"], {{"type", "dirac"}, {"point", {0.0, 0.0}}}, model_path);
  c["denoiser"] = {{"type", "mlp"}, {"path", model_path}};
  CHECK_THROWS_WITH(run_experiment(parse_experiment(c), {}),
                    Catch::Contains("was trained on the target"));
  std::filesystem::remove(model_path);
}

TEST_CASE("the perturbed model's error is proportional to delta", "[models]") {
  json c = tiny_config();
  c["solvers"] = {"dpm-solver-2"};
  c["nfe"] = {64, 128};
  c["fit_levels"] = 2;
  double errors[2];
  for (int k = 0; k < 2; ++k) {
    c["denoiser"] = {{"type", "perturbed"}, {"delta", k == 0 ? 1e-5 : 2e-5}};
    errors[k] = run_experiment(parse_experiment(c), {}).model_error_max;
  }
  CHECK(errors[0] > 1e-7);
  CHECK(errors[1] / errors[0] == Approx(2).epsilon(1e-3));
}

TEST_CASE("a learned model on a sample-only data set: its own flow as reference, samples",
          "[models]") {
  json c = tiny_config();
  c["target"] = {{"type", "dataset"}, {"name", "swiss-roll"}, {"noise", 0.1}};
  const MlpModel m = random_mlp(2, 8, 1, Activation::tanh, {}, 5);
  const std::string model_path = temp_path("dataset_model.h5");
  write_model_file(m, c["sde"], c["target"], model_path);
  c["denoiser"] = {{"type", "mlp"}, {"path", model_path}};
  c["solvers"] = {"dpm-solver-2"};
  c["init"] = {{"count", 3}, {"seed", 4}};
  // Convergence: the reference is the model's flow; no analytic flow, so no split.
  const ExperimentResult r = run_experiment(parse_experiment(c), {});
  CHECK_THAT(r.reference_method, Catch::Contains("model's own PF-ODE"));
  CHECK(r.analytic_flow.empty());
  CHECK(r.solvers[0].fit.order == Approx(2).margin(0.2));
  // Sample: distances to fresh swiss-roll points; no density, so no log-likelihood.
  c["kind"] = "sample";
  c["init"] = {{"count", 200}, {"seed", 4}};
  c["nfe"] = {8, 16};
  const ExperimentResult s = run_experiment(parse_experiment(c), {});
  CHECK(std::isfinite(s.sw2_floor));
  CHECK(std::isnan(s.data_mean_log_p0));
  for (const CellResult& cell : s.solvers[0].cells) {
    CHECK(std::isfinite(cell.sw2));
    CHECK(std::isnan(cell.mean_log_p0));
  }
  std::filesystem::remove(model_path);
}

TEST_CASE("the network's Jacobian: forward mode equals central differences in 50 digits",
          "[models]") {
  // Every activation but ReLU (its kinks), every output under VP; the score output under CLD.
  const json vp = {{"type", "vp-linear"}};
  for (const Activation act :
       {Activation::silu, Activation::gelu, Activation::tanh, Activation::softplus}) {
    for (const ModelOutput output :
         {ModelOutput::eps, ModelOutput::x0, ModelOutput::v, ModelOutput::score}) {
      MlpModel m = random_mlp(2, 6, 2, act, {0.5, 2.0}, 7);
      m.output = output;
      const auto sde = make_sde<mp50>(vp, 2, "sde");
      const MlpDenoiser<mp50> model(*sde, m);
      Rng rng(2);
      const Mat<mp50> x = rng.normal_matrix<mp50>(2, 3);
      const mp50 t("0.4"), h("1e-16");
      const BlockMatrix<mp50> w = sde->diffusion(t).scaled(mp50("0.5"));
      Vec<mp50> by_differences = Vec<mp50>::Zero(3);
      for (Eigen::Index k = 0; k < 2; ++k) {
        Mat<mp50> up = x, down = x;
        up.row(k).array() += h;
        down.row(k).array() -= h;
        const Mat<mp50> column = (model.score(up, t) - model.score(down, t)) / (2 * h);
        by_differences += (w.to_dense().row(k) * column).transpose();
      }
      const Vec<mp50> exact = model.score_divergence(x, t, w);
      INFO(static_cast<int>(act) << " " << static_cast<int>(output));
      CHECK(to_double(mp50((exact - by_differences).cwiseAbs().maxCoeff())) < 1e-28);
      CHECK(to_double(mp50(exact.cwiseAbs().maxCoeff())) > 1e-3);
    }
  }
}

TEST_CASE("kind likelihood with a learned model: its own exact divergence and 50-digit reference",
          "[models]") {
  json c = tiny_config();
  const MlpModel m = random_mlp(2, 4, 1, Activation::tanh, {}, 9);
  const std::string model_path = temp_path("likelihood_model.h5");
  write_model_file(m, c["sde"], c["target"], model_path);
  c["kind"] = "likelihood";
  c["denoiser"] = {{"type", "mlp"}, {"path", model_path}};
  c["solvers"] = {"rk4"};
  c["init"] = {{"points", {{0.3, -1.1}}}};
  c["nfe"] = {96, 192, 384, 768};
  const ExperimentResult r = run_experiment(parse_experiment(c), {});
  CHECK_THAT(r.reference_method, Catch::Contains("augmented PF-ODE (mlp"));
  CHECK(r.solvers[0].fit.order == Approx(4).margin(0.2));
  std::filesystem::remove(model_path);
}

TEST_CASE("a network's likelihood: Hutchinson within 3 standard errors of the exact trace",
          "[models]") {
  // The same rk4 solve of the augmented ODE with the exact trace (D forward-mode passes) and
  // with Hutchinson's estimate (4000 Rademacher probes): they differ by Monte-Carlo error.
  const MlpModel m = random_mlp(2, 8, 2, Activation::silu, {}, 11);
  const auto sde = make_sde<double>({{"type", "vp-linear"}}, 2, "sde");
  const MlpDenoiser<double> model(*sde, m);
  std::vector<double> grid;
  for (int i = 0; i <= 64; ++i) grid.push_back(1e-3 + (1 - 1e-3) * i / 64.0);
  Mat<double> x(2, 1);
  x << 0.3, -1.1;
  const auto exact =
      likelihood_solve<double>(*sde, model, nullptr, x, grid, "rk4", false, 0, false);
  const int copies = 4000;
  const Mat<double> xs = x.replicate(1, copies);
  Rng rng(1);
  const Mat<double> probes =
      rng.normal_matrix<double>(2, copies).unaryExpr([](double v) { return v > 0 ? 1.0 : -1.0; });
  const auto estimate =
      likelihood_solve<double>(*sde, model, nullptr, xs, grid, "rk4", false, 0, false, &probes);
  const double mean = estimate.log_density.mean();
  const double se =
      std::sqrt((estimate.log_density.array() - mean).square().sum() / (copies - 1) / copies);
  INFO(exact.log_density(0) << " against " << mean << " +- " << se);
  CHECK(std::abs(exact.log_density(0) - mean) < 3 * se);
  CHECK(se > 1e-8);
}

// ---------------------------------------------------------------------------------------------
// Class-conditional networks (format 1's optional `classes`) and classifier-free guidance.

using pflow::testing::labelled_mixture;

TEST_CASE("a class-conditional network: the one-hot label follows the embedding", "[models]") {
  // out = d silu(a x + b t + c + c_y) + e for D = 1, raw embedding, two classes; no label: no c_y.
  const double a = 0.7, b = -1.3, c = 0.2, c0 = 0.9, c1 = -0.6, d = 1.9, e = -0.4;
  MlpModel m;
  m.dim = 1;
  m.classes = 2;
  m.activation = Activation::silu;
  m.weights = {(Mat<double>(1, 4) << a, b, c0, c1).finished(), Mat<double>::Constant(1, 1, d)};
  m.biases = {Vec<double>::Constant(1, c), Vec<double>::Constant(1, e)};
  const auto silu = [](double h) { return h / (1 + std::exp(-h)); };
  const auto slope = [](double h) {
    const double s = 1 / (1 + std::exp(-h));
    return s * (1 + h * (1 - s));
  };
  const double x = 0.8, t = 0.35;
  const MlpNetwork<double> network(m);
  const MlpNetwork<mp50> network50(m);
  const Mat<double> xs = Mat<double>::Constant(1, 1, x);
  const Vec<double> ts = Vec<double>::Constant(1, t);
  const double shift[] = {0.0, c0, c1};
  for (int label = -1; label <= 1; ++label) {
    const double h = a * x + b * t + c + shift[label + 1];
    INFO("label " << label);
    CHECK(network.forward(xs, ts, label)(0, 0) == Approx(d * silu(h) + e).epsilon(1e-15));
    CHECK(network.jvp(xs, ts, Mat<double>::Ones(1, 1), label)(0, 0) ==
          Approx(d * slope(h) * a).epsilon(1e-15));
    const mp50 in_50 =
        network50.forward(xs.cast<mp50>(), ts.cast<mp50>(), label)(0, 0) - (d * silu(h) + e);
    CHECK(std::abs(to_double(in_50)) < 1e-15);
  }
  CHECK_THROWS_WITH(network.forward(xs, ts, 2), Catch::Contains("denoiser.label = 2"));
  MlpModel plain = m;
  plain.classes = 0;
  CHECK_THROWS_WITH(MlpNetwork<double>(plain).forward(xs, ts, 0),
                    Catch::Contains("denoiser.label = 0"));
}

TEST_CASE("CFG of a network: w = 0 is the conditional network, divergence by differences",
          "[models][guidance]") {
  const MlpModel m = random_mlp(2, 12, 2, Activation::silu, {0.5, 2.0}, 21, 2);
  const auto sde = make_sde<double>({{"type", "vp-linear"}}, 2, "sde");
  Rng rng(4);
  const Mat<double> x = rng.normal_matrix<double>(2, 7);
  const double t = 0.3;
  const MlpDenoiser<double> conditional(*sde, m, 1), unconditional(*sde, m);
  // w = 0: bit for bit the conditional network.
  CHECK(testing::max_diff(CfgMlpDenoiser<double>(*sde, m, 1, 0.0).score(x, t),
                          conditional.score(x, t)) == 0);
  // w = 2.5: 3.5 s(x | 1) - 2.5 s(x), and the labels matter.
  const Mat<double> s1 = conditional.score(x, t), s0 = unconditional.score(x, t);
  CHECK(testing::max_diff(s1, s0) > 1e-2);
  const Mat<double> guided = CfgMlpDenoiser<double>(*sde, m, 1, 2.5).score(x, t);
  CHECK(testing::max_diff(guided, 3.5 * s1 - 2.5 * s0) < 1e-13 * s1.cwiseAbs().maxCoeff());
  CHECK_THROWS_WITH(CfgMlpDenoiser<double>(*sde, m, 2, 1.0),
                    Catch::Contains("knows classes 0 to 1"));
  CHECK_THROWS_WITH(MlpDenoiser<double>(*sde, random_mlp(2, 4, 1, Activation::silu, {}, 1), 0),
                    Catch::Contains("is not class-conditional"));

  // The guided divergence tr(W grad s) and JVP in 50 digits against central differences of the
  // guided score itself.
  const auto sde50 = make_sde<mp50>({{"type", "vp-linear"}}, 2, "sde");
  const CfgMlpDenoiser<mp50> cfg(*sde50, m, 0, mp50(3));
  const Mat<mp50> x50 = x.leftCols(3).cast<mp50>();
  const mp50 t50("0.3"), h("1e-16");
  const BlockMatrix<mp50> w = sde50->diffusion(t50).scaled(mp50("0.5"));
  Vec<mp50> by_differences = Vec<mp50>::Zero(3);
  Mat<mp50> jacobian_v = Mat<mp50>::Zero(2, 3);
  const Mat<mp50> v = rng.normal_matrix<double>(2, 3).cast<mp50>();
  for (Eigen::Index k = 0; k < 2; ++k) {
    Mat<mp50> up = x50, down = x50;
    up.row(k).array() += h;
    down.row(k).array() -= h;
    const Mat<mp50> column = (cfg.score(up, t50) - cfg.score(down, t50)) / (2 * h);
    by_differences += (w.to_dense().row(k) * column).transpose();
    jacobian_v += column * v.row(k).asDiagonal();
  }
  CHECK(to_double(mp50(
            (cfg.score_divergence(x50, t50, w) - by_differences).cwiseAbs().maxCoeff())) < 1e-28);
  CHECK(to_double(mp50((cfg.score_jvp(x50, t50, v) - jacobian_v).cwiseAbs().maxCoeff())) < 1e-28);
}

TEST_CASE("a class-conditional model file: classes, check labels, one class and CFG runs",
          "[models][guidance]") {
  json c = tiny_config();
  c["target"] = labelled_mixture();
  MlpModel m = random_mlp(2, 8, 1, Activation::tanh, {}, 17, 2);
  // Check points with labels -1, 0 and 1, their outputs from pflow's own forward label by label:
  // the reader must pair every point with its label to reproduce them.
  Rng rng(8);
  m.check_x = rng.normal_matrix<double>(2, 6);
  m.check_t = Vec<double>::LinSpaced(6, 0.1, 0.9);
  m.check_labels = {-1, 0, 1, 1, 0, -1};
  m.check_output.resize(2, 6);
  for (Eigen::Index j = 0; j < 6; ++j)
    m.check_output.col(j) = MlpNetwork<double>(m).forward(m.check_x.col(j), m.check_t.segment(j, 1),
                                                          m.check_labels[static_cast<size_t>(j)]);
  const std::string path = temp_path("conditional_model.h5");
  write_model_file(m, c["sde"], c["target"], path);
  const MlpModel read = load_mlp_model(path);
  CHECK(read.classes == 2);
  CHECK(read.check_labels == m.check_labels);
  CHECK(check_model(read).torch_vs_double == 0);
  CHECK_THAT(describe_model(read), Catch::Contains("class-conditional: 2 one-hot label inputs"));

  // A run of class 1, and CFG at w = 0 over the same network: identical states.
  c["solvers"] = {"dpm-solver-2"};
  c["nfe"] = {16, 32};
  c["init"] = {{"points", {{0.3, -1.1}, {1.2, 0.4}}}};
  c["denoiser"] = {{"type", "mlp"}, {"path", path}, {"label", 1}};
  const ExperimentResult one_class = run_experiment(parse_experiment(c), {});
  CHECK(one_class.analytic_flow.empty());  // a class's network is no model of the data
  c["denoiser"] = {{"type", "guided"}, {"path", path}, {"label", 1}, {"scale", 0.0}};
  const ExperimentResult cfg0 = run_experiment(parse_experiment(c), {});
  CHECK(cfg0.solvers[0].cells[1].x == one_class.solvers[0].cells[1].x);
  CHECK(cfg0.reference == one_class.reference);
  c["denoiser"]["scale"] = 2.0;
  const ExperimentResult cfg2 = run_experiment(parse_experiment(c), {});
  CHECK(testing::max_diff(Eigen::Map<const Mat<double>>(cfg2.reference.data(), 2, 2),
                          Eigen::Map<const Mat<double>>(cfg0.reference.data(), 2, 2)) > 1e-3);

  // Refused by field: a label for an unconditional model, a class the model does not have, a
  // classifier for a network, classifier guidance of a network in kind guidance.
  const std::string plain = temp_path("plain_model.h5");
  write_model_file(random_mlp(2, 8, 1, Activation::tanh, {}, 17), c["sde"], c["target"], plain);
  c["denoiser"] = {{"type", "mlp"}, {"path", plain}, {"label", 1}};
  CHECK_THROWS_WITH(
      run_experiment(parse_experiment(c), {}),
      Catch::Contains("denoiser.label = 1: model") && Catch::Contains("is not class-conditional"));
  c["denoiser"] = {{"type", "guided"}, {"path", plain}, {"label", 0}};
  CHECK_THROWS_WITH(run_experiment(parse_experiment(c), {}),
                    Catch::Contains("is not class-conditional"));
  c["denoiser"] = {{"type", "guided"}, {"path", path}, {"label", 1}, {"guidance", "classifier"}};
  CHECK_THROWS_WITH(parse_experiment(c), Catch::Contains("denoiser.guidance = classifier: a "
                                                         "learned model has no classifier"));
  json guidance = c;
  guidance["kind"] = "guidance";
  guidance["denoiser"] = {{"type", "mlp"}, {"path", path}};
  guidance["init"] = {{"count", 50}, {"seed", 1}};
  guidance["guidance"] = {
      {"label", 1}, {"scales", {0.0, 1.0}}, {"grid", 100}, {"method", "classifier"}};
  guidance["nfe"] = {16};
  guidance["projections"] = 16;
  guidance["replicates"] = 2;
  CHECK_THROWS_WITH(parse_experiment(guidance),
                    Catch::Contains("guidance.method = classifier: a learned model"));
  // Kind guidance with the network: CFG of the network at every scale; at w = 0 the states of
  // the class-1 network.
  guidance["guidance"]["method"] = "cfg";
  const ExperimentResult swept = run_experiment(parse_experiment(guidance), {});
  const CellResult& cell = swept.solvers[0].cells[0];
  REQUIRE(cell.series.at("samples").size() == 2 * 50 * 2);
  // Beside it the exact CFG flow of the same x_T: a random network is far from it.
  REQUIRE(cell.series.at("exact_cfg_gap").size() == 2);
  CHECK(cell.series.at("exact_cfg_gap")[0] > 0.1);
  const std::string out = temp_path("network_guidance.h5");
  write_result(swept, out);
  CHECK_THAT(result_table(swept, "markdown", ""), Catch::Contains("| gap to exact CFG |"));
  CHECK(result_table(out, "markdown", "") == result_table(swept, "markdown", ""));
  CHECK(h5::File::open(out).read("/solvers/dpm-solver-2/exact_cfg_gap").size() == 2);
  std::filesystem::remove(out);
  json same = guidance;
  same["kind"] = "sample";
  same.erase("guidance");
  same["denoiser"] = {{"type", "mlp"}, {"path", path}, {"label", 1}};
  const ExperimentResult sampled = run_experiment(parse_experiment(same), {});
  REQUIRE(sampled.solvers[0].cells[0].x.size() == 100);
  CHECK(std::vector<double>(cell.series.at("samples").begin(),
                            cell.series.at("samples").begin() + 100) ==
        sampled.solvers[0].cells[0].x);

  std::filesystem::remove(path);
  std::filesystem::remove(plain);
}

TEST_CASE("CFG of a network keeps every listed solver's order against its 50-digit flow",
          "[models][guidance][mp50-long]") {
  json c = tiny_config();
  c["target"] = labelled_mixture();
  const MlpModel m = random_mlp(2, 8, 1, Activation::silu, {}, 23, 2);
  const std::string path = temp_path("cfg_orders_model.h5");
  write_model_file(m, c["sde"], c["target"], path);
  c["denoiser"] = {{"type", "guided"}, {"path", path}, {"label", 0}, {"scale", 2.0}};
  pflow::testing::use_guided_order_ladder(c);
  const ExperimentResult r = run_experiment(parse_experiment(c), {});
  CHECK_THAT(r.reference_method, Catch::Contains("model's own PF-ODE"));
  CHECK(r.analytic_flow.empty());
  const auto& declared = pflow::testing::guided_ladder_orders;
  for (size_t i = 0; i < r.solvers.size(); ++i) {
    INFO(r.solvers[i].label << ": fitted " << r.solvers[i].fit.order);
    CHECK(r.solvers[i].fit.order >= declared[i] - 0.2);
    CHECK(r.solvers[i].fit.order <= declared[i] + 0.3);
  }
  std::filesystem::remove(path);
}
