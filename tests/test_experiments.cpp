// Experiments: a convergence run read back from its HDF5 file (every dataset and attribute of
// the documented layout), bit-identical results across thread counts, the kernel table, the
// table formats and config validation.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "helpers.hpp"
#include "pflow/experiment/h5.hpp"
#include "pflow/experiment/run.hpp"
#include "pflow/experiment/table.hpp"

using namespace pflow;
using json = nlohmann::json;
using pflow::testing::temp_path;
using pflow::testing::tiny_config;

TEST_CASE("a convergence run writes every documented dataset and attribute", "[experiments]") {
  const ExperimentConfig config = parse_experiment(tiny_config());
  const ExperimentResult result = run_experiment(config, {});
  const std::string path = temp_path("run.h5");
  write_result(result, path);
  const h5::File f = h5::File::open(path);

  for (const char* key : {"config_json", "git_commit", "git_dirty", "pflow_version", "created_utc",
                          "schema_version", "host", "compiler", "libraries"})
    CHECK_FALSE(f.read_string("/", key).empty());
  const json stored = json::parse(f.read_string("/", "config_json"));
  CHECK(stored["nfe"] == json({16, 32, 64, 128}));
  CHECK(stored["precision"] == "double");  // defaults are filled in
  CHECK(stored["reference"] == "auto");
  CHECK(f.read_string("/", "schema_version") == "1");

  std::vector<size_t> shape;
  const auto init = f.read("/init/x", &shape);
  CHECK(shape == std::vector<size_t>{3, 2});
  CHECK(init[0] == 0.3);  // row-major: particle 0, coordinate 0, then coordinate 1
  CHECK(init[1] == -1.1);
  const auto reference = f.read("/reference/x", &shape);
  CHECK(shape == std::vector<size_t>{3, 2});
  CHECK(f.read_string("/reference", "method") == "exact flow map (50 digits)");
  // The reference is the exact flow map: the first particle's image is known to 1e-15.
  Mat<double> x(2, 1);
  x << 0.3, -1.1;
  VpLinear<double> sde(0.1, 20.0, 2);
  Mat<double> s0(2, 2);
  s0 << 1.0, 0.8, 0.8, 0.9;
  Vec<double> mu(2);
  mu << 0.5, -1.0;
  const Mat<double> exact =
      exact_flow_map<double>(sde, GaussianMixture<double>::gaussian(mu, s0), x, 1.0, 1e-3);
  CHECK(std::abs(reference[0] - exact(0, 0)) < 1e-14);
  CHECK(std::abs(reference[1] - exact(1, 0)) < 1e-14);

  const auto labels = f.children("/solvers");
  REQUIRE(labels.size() == 3);
  for (const auto& label : labels) {
    const std::string g = "/solvers/" + label;
    INFO(label);
    for (const char* name : {"nfe", "steps", "err_max", "err_rms", "wall_s"}) {
      f.read(g + "/" + name, &shape);
      CHECK(shape == std::vector<size_t>{4});
    }
    const auto xs = f.read(g + "/x", &shape);
    CHECK(shape == std::vector<size_t>{4, 3, 2});
    const auto err = f.read(g + "/err_max");
    // err_max is max |x - reference| of the stored final states.
    double recomputed = 0;
    for (size_t k = 0; k < 6; ++k)
      recomputed = std::max(recomputed, std::abs(xs[3 * 6 + k] - reference[k]));
    CHECK(std::abs(recomputed - err[3]) <= 1e-15);
    for (size_t i = 1; i < err.size(); ++i) CHECK(err[i] < err[i - 1]);
    CHECK_FALSE(f.read_string(g, "name").empty());
    CHECK(f.read_doubles(g, "pairwise_orders").size() == 3);
    const double declared = f.read_double(g, "declared_order");
    const double fitted = f.read_double(g, "fitted_order");
    CHECK(fitted > declared - 0.3);
    const auto nfe = f.read(g + "/nfe");
    const auto steps = f.read(g + "/steps");
    CHECK(nfe[0] == (label == "dpm-solver-2" ? 16 : 16));
    CHECK(steps[0] == (label == "dpm-solver-2" ? 8 : 16));
  }
  std::filesystem::remove(path);
}

TEST_CASE("h5 files are written from the in-memory buffer as a closed file reads",
          "[experiments]") {
  const std::string path = temp_path("h5_buffer.h5");
  std::vector<double> data(3 * 1000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = 0.5 * static_cast<double>(i) - 7.25;
  {
    pflow::h5::File f = pflow::h5::File::create(path, data.size() * sizeof(double));
    f.group("/g");
    f.dataset("/g/x", {1000, 3}, data);
    f.attribute("/g", "label", std::string("buffer"));
    // Slabs along the first axis, a missing one written as NaN (a failed cell's states).
    f.dataset_slabs("/g/slabs", {3, 2, 2}, {data.data(), nullptr, data.data() + 4});
    f.save();
  }
  // The superblock (version 0) with its status flags cleared, as HDF5 leaves a closed file.
  std::ifstream in(path, std::ios::binary);
  std::vector<char> head(24);
  in.read(head.data(), 24);
  REQUIRE(std::string(head.data() + 1, 3) == "HDF");
  CHECK(head[8] == 0);
  CHECK(std::count(head.begin() + 20, head.end(), 0) == 4);
  const pflow::h5::File back = pflow::h5::File::open(path);
  std::vector<size_t> shape;
  CHECK(back.read("/g/x", &shape) == data);
  CHECK(shape == std::vector<size_t>{1000, 3});
  CHECK(back.read_string("/g", "label") == "buffer");
  const std::vector<double> slabs = back.read("/g/slabs", &shape);
  CHECK(shape == std::vector<size_t>{3, 2, 2});
  CHECK(std::vector<double>(slabs.begin(), slabs.begin() + 4) ==
        std::vector<double>(data.begin(), data.begin() + 4));
  CHECK(std::count_if(slabs.begin() + 4, slabs.begin() + 8,
                      [](double v) { return std::isnan(v); }) == 4);
  CHECK(std::vector<double>(slabs.begin() + 8, slabs.end()) ==
        std::vector<double>(data.begin() + 4, data.begin() + 8));
}

TEST_CASE("same config and seed give bit-identical datasets for 1 and 2 threads",
          "[experiments][threads]") {
  json c = tiny_config();
  c["init"] = {{"count", 5}, {"seed", 11}};
  c["solvers"] = {"ddim", "ddpm", "dpm-solver++-3m"};
  const ExperimentConfig config = parse_experiment(c);
  RunOptions one, two;
  two.threads = 2;
  const ExperimentResult a = run_experiment(config, one);
  const ExperimentResult b = run_experiment(config, two);
  CHECK(a.init == b.init);
  CHECK(a.reference == b.reference);
  for (size_t s = 0; s < a.solvers.size(); ++s)
    for (size_t k = 0; k < a.solvers[s].cells.size(); ++k) {
      CHECK(a.solvers[s].cells[k].x == b.solvers[s].cells[k].x);
      CHECK(a.solvers[s].cells[k].err_max == b.solvers[s].cells[k].err_max);
      CHECK(a.solvers[s].cells[k].nfe == b.solvers[s].cells[k].nfe);
    }
  // A different seed changes the stochastic solver only.
  c["seed"] = 4;
  const ExperimentResult d = run_experiment(parse_experiment(c), one);
  CHECK(d.solvers[0].cells[0].x == a.solvers[0].cells[0].x);
  CHECK(d.solvers[1].cells[0].x != a.solvers[1].cells[0].x);
}

TEST_CASE("the kernel table: closed forms beside their numerical counterparts", "[experiments]") {
  const json c = {{"name", "cld_kernel"},
                  {"kind", "kernel"},
                  {"sde", {{"type", "cld"}}},
                  {"target", {{"type", "dirac"}, {"point", {0.5}}}},
                  {"times", {0.0, 0.1, 0.5, 1.0}}};
  const std::string path = temp_path("kernel.h5");
  write_result(run_experiment(parse_experiment(c), {}), path);
  const h5::File f = h5::File::open(path);
  std::vector<size_t> shape;
  const auto sigma = f.read("/kernel/sigma", &shape);
  CHECK(shape == std::vector<size_t>{4, 2, 2});
  const auto sigma_numeric = f.read("/kernel/sigma_numeric");
  for (size_t i = 0; i < sigma.size(); ++i) CHECK(std::abs(sigma[i] - sigma_numeric[i]) < 1e-12);
  // the public check values of docs/NOTES.md: CLD Sigma(0.1).
  CHECK(std::abs(sigma[4] - 0.2218100610414) < 1e-13);
  CHECK(std::abs(sigma[5] - 0.1298598403741) < 1e-13);
  CHECK(std::abs(sigma[7] - 0.2157583505481) < 1e-13);
  const auto psi = f.read("/kernel/psi"), psi_numeric = f.read("/kernel/psi_numeric");
  for (size_t i = 0; i < psi.size(); ++i) CHECK(std::abs(psi[i] - psi_numeric[i]) < 1e-12);
  const auto q = f.read("/kernel/q", &shape);
  CHECK(shape == std::vector<size_t>{4, 2, 2});
  CHECK(std::abs(q[4 * 2 + 1] + 4.0) < 1e-12);  // Q = beta [[0, -1], [1, 0]] at t = 0.5
  std::filesystem::remove(path);
}

TEST_CASE("tables: markdown, LaTeX with booktabs, CSV", "[experiments]") {
  const std::string path = temp_path("table.h5");
  const ExperimentResult result = run_experiment(parse_experiment(tiny_config()), {});
  write_result(result, path);
  // pflow run's summary comes from the result in memory: the same text as from the file.
  for (const char* format : {"markdown", "latex", "csv"})
    for (const char* metric : {"err_max", "err_rms", "wall_s"})
      CHECK(result_table(result, format, metric) == result_table(path, format, metric));
  const std::string brief = brief_report(result, 1.25);
  CHECK_THAT(brief,
             Catch::StartsWith("pflow run tiny_convergence: kind convergence, 3 solvers, 12 cells "
                               "(0 failed), 3 particles, double; reference: "));
  CHECK_THAT(brief, Catch::Contains("\n  ddim: declared order 1, fitted 0.97, smallest error "));
  const std::string md = result_table(path, "markdown", "err_max");
  CHECK_THAT(md, Catch::Contains("| solver | declared order | fitted order | NFE 16 |"));
  CHECK_THAT(md, Catch::Contains("| ddim | 1 | 0.97 | 1.73e-01 |"));
  const std::string tex = result_table(path, "latex", "err_rms");
  for (const char* rule : {"\\toprule", "\\midrule", "\\bottomrule", "\\texttt{ddim}"})
    CHECK_THAT(tex, Catch::Contains(rule));
  // Numbers through siunitx, a header that says the columns are NFE, names fully escaped.
  CHECK_THAT(tex, Catch::StartsWith("% requires \\usepackage{booktabs} and \\usepackage{siunitx}"));
  CHECK_THAT(tex, Catch::Contains("\\multicolumn{4}{c}{\\texttt{err\\_rms} at NFE}"));
  CHECK_THAT(tex, Catch::Contains("solver & order & order & \\num{16} & \\num{32}"));
  CHECK_THAT(tex, Catch::Contains("\\texttt{ddim} & \\num{1} & \\num{0.97} & \\num{"));
  CHECK(latex_escape("a_b&c%d#e$f{g}h^i~j\\k") ==
        "a\\_b\\&c\\%d\\#e\\$f\\{g\\}h\\textasciicircum{}i\\textasciitilde{}j\\textbackslash{}k");
  const std::string csv = result_table(path, "csv", "wall_s");
  CHECK_THAT(csv, Catch::StartsWith("solver,declared_order,fitted_order,nfe_16,nfe_32"));
  CHECK_THAT(csv, Catch::Contains("\"unipc(order=2,variant=bh1)\""));
  CHECK_THROWS_WITH(result_table(path, "html", "err_max"), Catch::Contains("--format = html"));
  CHECK_THROWS_WITH(result_table("/nonexistent.h5", "markdown", "err_max"),
                    Catch::Contains("result file = /nonexistent.h5: does not exist"));
  std::filesystem::remove(path);
}

TEST_CASE("configs are validated before any work, naming the field", "[experiments]") {
  auto fails = [](json c, const std::string& fragment) {
    INFO(fragment);
    CHECK_THROWS_WITH(parse_experiment(c), Catch::Contains(fragment));
  };
  const json good = tiny_config();
  json c = good;
  c["nfe"] = {1, 2};
  c["solvers"] = {"dpm-solver-3"};
  fails(c, "nfe[0] = 1: is below the minimum of dpm-solver-3");
  c = good;
  c["init"]["points"] = {{0.1, 0.2, 0.3}};
  fails(c, "init.points[0]");
  c = good;
  c["time"]["t_end"] = 0.0;
  fails(c, "time.t_end = 0");
  c = good;
  c["solvers"] = {"ddim", "dpm-solver-9"};
  fails(c, "solvers[1].name = dpm-solver-9");
  c = good;
  c["kind"] = "convergance";
  fails(c, "did you mean 'convergence'");
  c = good;
  c["nfe"] = {32, 16};
  fails(c, "nfe[1] = 16: NFE values must increase");
  c = good;
  c["solvers"] = {"ddim", "ddim"};
  fails(c, "appears twice");
  c = good;
  c["target"]["cov"] = {{1.0, 2.0}, {2.0, 1.0}};
  fails(c, "target.cov");
  c = good;
  // json::array: under clang, {json{...}} copies the one element instead (CWG 1467).
  c["solvers"] = json::array({json{{"name", "dopri5"}, {"adaptive", true}}});
  fails(c, "is adaptive");
}

TEST_CASE("work-precision: adaptive solvers over tolerances, fixed ones over NFE",
          "[experiments]") {
  json c = tiny_config();
  c["kind"] = "work-precision";
  c["solvers"] = {json{{"name", "dopri5"}, {"adaptive", true}}, "bulirsch-stoer", "ddim"};
  c["tolerances"] = {1e-4, 1e-7, 1e-10};
  c["nfe"] = {16, 64};
  const ExperimentConfig config = parse_experiment(c);
  const ExperimentResult r = run_experiment(config, {});
  REQUIRE(r.solvers.size() == 3);
  CHECK(r.solvers[0].cells.size() == 3);
  CHECK(r.solvers[2].cells.size() == 2);
  for (int s = 0; s < 2; ++s) {
    INFO(r.solvers[s].label);
    for (size_t i = 0; i < 3; ++i) {
      CHECK_FALSE(r.solvers[s].cells[i].failed);
      CHECK(r.solvers[s].cells[i].err_max < 300 * config.tolerances[i]);
      if (i > 0) CHECK(r.solvers[s].cells[i].nfe > r.solvers[s].cells[i - 1].nfe);
    }
    CHECK(std::isnan(r.solvers[s].fit.order));
  }
  const std::string path = temp_path("wp.h5");
  write_result(r, path);
  const h5::File f = h5::File::open(path);
  const auto tol = f.read("/solvers/bulirsch-stoer/tolerance");
  CHECK(tol == std::vector<double>{1e-4, 1e-7, 1e-10});
  CHECK(std::isnan(f.read("/solvers/ddim/tolerance")[0]));
  const std::string md = result_table(path, "markdown", "err_max");
  CHECK_THAT(md, Catch::Contains("| bulirsch-stoer | tol 1e-07 |"));
  CHECK_THAT(md, Catch::Contains("| ddim | fixed | 16 |"));
  std::filesystem::remove(path);
  // Adaptive solvers need tolerances; convergence runs refuse them.
  c.erase("tolerances");
  CHECK_THROWS_WITH(parse_experiment(c), Catch::Contains("tolerances = (missing)"));
  c["kind"] = "convergence";
  CHECK_THROWS_WITH(parse_experiment(c), Catch::Contains("is adaptive"));
}

TEST_CASE("trajectory runs store every grid state beside the reference", "[experiments]") {
  json c = tiny_config();
  c["kind"] = "trajectory";
  c["solvers"] = {"ddim", "dpm-solver-2"};
  c["nfe"] = {8, 16};
  const ExperimentConfig config = parse_experiment(c);
  const ExperimentResult r = run_experiment(config, {});
  const std::string path = temp_path("trajectory.h5");
  write_result(r, path);
  const h5::File f = h5::File::open(path);
  std::vector<size_t> shape;
  const std::string g = "/solvers/dpm-solver-2/trajectory_nfe_16";
  const auto t = f.read(g + "/t", &shape);
  CHECK(shape == std::vector<size_t>{9});  // 8 steps of 2 evaluations
  CHECK(t.front() == 1.0);
  CHECK(t.back() == 1e-3);
  const auto x = f.read(g + "/x", &shape);
  CHECK(shape == std::vector<size_t>{9, 3, 2});
  const auto ref = f.read(g + "/reference");
  const auto init = f.read("/init/x"), final_ref = f.read("/reference/x");
  const auto final_x = f.read("/solvers/dpm-solver-2/x");  // [2, 3, 2]
  for (size_t k = 0; k < 6; ++k) {
    CHECK(x[k] == init[k]);
    CHECK(std::abs(ref[k] - init[k]) < 1e-15);
    CHECK(std::abs(ref[8 * 6 + k] - final_ref[k]) < 1e-15);
    CHECK(x[8 * 6 + k] == final_x[6 + k]);
  }
  // Errors along the way stay below the final one's order of magnitude times 10.
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) worst = std::max(worst, std::abs(x[i] - ref[i]));
  CHECK(worst < 10 * r.solvers[1].cells[1].err_max + 1e-3);
  std::filesystem::remove(path);
}

TEST_CASE("the run plan: cells, NFE, the memory model and a calibrated time", "[experiments]") {
  const ExperimentConfig config = parse_experiment(tiny_config());
  const RunPlan plan = plan_run(config, 2, true);
  REQUIRE(plan.cells.size() == 12);  // 3 solvers x 4 NFE levels
  CHECK(plan.cells[4].solver == "dpm-solver-2");
  CHECK(plan.cells[4].nfe == 16);
  CHECK(plan.nfe_per_particle == 3 * (16 + 32 + 64 + 128));
  CHECK(plan.particles == 3);
  // Stored: initial states, reference and 12 cells' final states, 3 x 2 doubles each; the file
  // buffer 1/8 more; two cells running with 6 arrays each; one 2 x 2 covariance.
  CHECK(plan.memory_states == 14.0 * 3 * 2 * 8);
  CHECK(plan.memory_file == Approx(1.125 * plan.memory_states));
  CHECK(plan.memory_work == 2.0 * 6 * 3 * 2 * 8);
  CHECK(plan.memory == Approx(25e6 + plan.memory_data + plan.memory_states +
                              std::max(plan.memory_file, plan.memory_work)));
  CHECK(std::isfinite(plan.seconds_one_thread));
  CHECK(plan.seconds_one_thread > 0);
  CHECK_THAT(format_plan(config, plan, 2), Catch::Contains("cells: 12"));

  // The same estimate refuses a run that cannot fit: 1e8 particles in 64 dimensions.
  json big = tiny_config();
  big.erase("init");
  big["init"] = {{"count", 100000000}};
  big["target"] = {{"type", "gaussian"}, {"mean", std::vector<double>(64, 0.0)}};
  std::vector<std::vector<double>> identity(64, std::vector<double>(64, 0.0));
  for (int i = 0; i < 64; ++i) identity[i][i] = 1;
  big["target"]["cov"] = identity;
  const ExperimentConfig huge = parse_experiment(big);
  CHECK_THROWS_WITH(require_memory_fits(huge, 1),
                    Catch::Contains("init.count = 100000000: the run needs an estimated"));
}

// The image-sized Gaussian path at d = 64: the exact map evaluated in double from the cached
// LAPACK eigendecomposition (reference "exact-double") against the same closed form in 50 digits
// with Eigen's eigensolver (reference "exact"): an independent computation of the reference.
TEST_CASE("exact-double reference agrees with the 50-digit exact map at d = 64", "[experiments]") {
  json c = {
      {"name", "gaussian64"},
      {"sde", {{"type", "vp-linear"}, {"beta_min", 0.1}, {"beta_max", 20.0}}},
      {"target",
       {{"type", "gaussian"},
        {"generated",
         {{"dim", 64}, {"largest", 200.0}, {"exponent", 1.5}, {"mean_std", 0.5}, {"seed", 1}}}}},
      {"time", {{"t_start", 1.0}, {"t_end", 1e-3}, {"grid", "logsnr"}}},
      {"init", {{"count", 8}, {"seed", 2}}},
      {"solvers", {"ddim", "dpm-solver++-2m"}},
      {"nfe", {6, 12, 24, 48}},
      {"reference", "exact-double"}};
  const ExperimentResult fast = run_experiment(parse_experiment(c), {});
  // Bit-identical on two threads: the cells run side by side, each calling OpenBLAS (one thread
  // inside) for the score's products.
  RunOptions two;
  two.threads = 2;
  const ExperimentResult fast2 = run_experiment(parse_experiment(c), two);
  CHECK(fast2.reference == fast.reference);
  for (size_t s = 0; s < fast.solvers.size(); ++s)
    for (size_t k = 0; k < fast.solvers[s].cells.size(); ++k)
      CHECK(fast2.solvers[s].cells[k].x == fast.solvers[s].cells[k].x);
  c["reference"] = "exact";
  const ExperimentResult slow = run_experiment(parse_experiment(c), {});
  CHECK_THAT(fast.reference_method, Catch::Contains("double, per-mode closed form"));
  CHECK(slow.reference_method == "exact flow map (50 digits)");
  REQUIRE(fast.reference.size() == 8 * 64);
  const auto [diff, scale] = pflow::testing::diff_and_scale(fast.reference, slow.reference);
  INFO("max |exact-double - exact| = " << diff << " of max |x| = " << scale);
  CHECK(diff < 1e-12 * scale);
  CHECK(diff > 0);  // two computations, not one
  // The cells are the same solves: their errors agree to the references' difference.
  for (size_t s = 0; s < fast.solvers.size(); ++s)
    for (size_t k = 0; k < fast.solvers[s].cells.size(); ++k) {
      CHECK(fast.solvers[s].cells[k].x == slow.solvers[s].cells[k].x);
      CHECK(std::abs(fast.solvers[s].cells[k].err_max - slow.solvers[s].cells[k].err_max) <=
            2 * diff);
    }
  // "exact-double" is a double-precision, end-point reference.
  c["reference"] = "exact-double";
  c["precision"] = "mp50";
  CHECK_THROWS_WITH(parse_experiment(c), Catch::Contains("needs precision \"double\""));
  c["precision"] = "double";
  c["kind"] = "trajectory";
  CHECK_THROWS_WITH(parse_experiment(c), Catch::Contains("applies to kinds"));
}
