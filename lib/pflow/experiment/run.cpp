#include "pflow/experiment/run.hpp"

#include <unistd.h>

#include <H5Cpp.h>

#include <algorithm>
#include <atomic>
#include <boost/version.hpp>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "pflow/experiment/h5.hpp"
#include "pflow/sde/factory.hpp"
#include "pflow/sde/kernel_numeric.hpp"
#include "pflow/version.hpp"

#ifndef PFLOW_SOURCE_DIR
#define PFLOW_SOURCE_DIR "."
#endif

namespace pflow {

namespace {

std::string shell(const std::string& command) {
  std::string out;
  if (FILE* p = popen(command.c_str(), "r")) {
    char buf[256];
    while (fgets(buf, sizeof buf, p)) out += buf;
    pclose(p);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

template <class Scalar>
std::vector<double> row_major(const Mat<Scalar>& x) {  // D x n -> [n, D]
  std::vector<double> out(static_cast<size_t>(x.size()));
  for (Eigen::Index j = 0; j < x.cols(); ++j)
    for (Eigen::Index i = 0; i < x.rows(); ++i) out[j * x.rows() + i] = to_double(Scalar(x(i, j)));
  return out;
}

// The reference flow from t_start through every grid time in 50 digits (exact map, or the
// Bulirsch-Stoer solve carried from one grid time to the next).
template <class Scalar>
void record_trajectory(const LinearSde<mp50>& sde50, const GaussianMixture<mp50>& data50,
                       bool exact, const std::vector<Scalar>& grid,
                       const std::vector<Mat<Scalar>>& states, Trajectory& out) {
  Mat<mp50> x = states.front().template cast<mp50>();
  const Mat<mp50> x_start = x;
  for (size_t i = 0; i < grid.size(); ++i) {
    const mp50 t = mp50(grid[i]);
    if (i > 0)
      x = exact ? exact_flow_map(sde50, data50, x_start, mp50(grid.front()), t)
                : reference_flow<mp50>(sde50, data50, x, mp50(grid[i - 1]), t);
    out.t.push_back(to_double(grid[i]));
    const auto ref = row_major(x);
    out.reference.insert(out.reference.end(), ref.begin(), ref.end());
    const auto xs = row_major(states.at(i));
    out.x.insert(out.x.end(), xs.begin(), xs.end());
  }
}

// Moments of the particles (columns): the weak error compares these with the reference's.
template <class Scalar>
double weak_error(const Mat<Scalar>& x, const Mat<Scalar>& reference) {
  auto moments = [](const Mat<Scalar>& m) {
    const Vec<Scalar> mean = m.rowwise().mean();
    const Mat<Scalar> centred = m.colwise() - mean;
    const Mat<Scalar> cov = centred * centred.transpose() / Scalar(m.cols());
    return std::make_pair(mean, cov);
  };
  const auto [mx, cx] = moments(x);
  const auto [mr, cr] = moments(reference);
  return std::max(to_double(Scalar((mx - mr).cwiseAbs().maxCoeff())),
                  to_double(Scalar((cx - cr).cwiseAbs().maxCoeff())));
}

// Checkpoint files: one JSON file per finished cell. Doubles round-trip exactly through
// nlohmann's shortest representation; NaN (failed cells, fixed-step tolerances) is stored as null.
nlohmann::json number_or_null(double v) {
  return std::isnan(v) ? nlohmann::json() : nlohmann::json(v);
}
double number_or_nan(const nlohmann::json& v) {
  return v.is_null() ? std::nan("") : v.get<double>();
}

nlohmann::json cell_to_json(const CellResult& c) {
  return {{"nfe_target", c.nfe_target},
          {"tolerance", number_or_null(c.tolerance)},
          {"nfe", c.nfe},
          {"steps", c.steps},
          {"err_max", number_or_null(c.err_max)},
          {"err_rms", number_or_null(c.err_rms)},
          {"err_weak", number_or_null(c.err_weak)},
          {"wall_s", c.wall_s},
          {"x", c.x},
          {"failed", c.failed},
          {"failure", c.failure},
          {"trajectory",
           {{"t", c.trajectory.t}, {"x", c.trajectory.x}, {"reference", c.trajectory.reference}}}};
}

CellResult cell_from_json(const nlohmann::json& j) {
  CellResult c;
  c.nfe_target = j.at("nfe_target").get<int>();
  c.tolerance = number_or_nan(j.at("tolerance"));
  c.nfe = j.at("nfe").get<long>();
  c.steps = j.at("steps").get<int>();
  c.err_max = number_or_nan(j.at("err_max"));
  c.err_rms = number_or_nan(j.at("err_rms"));
  c.err_weak = number_or_nan(j.at("err_weak"));
  c.wall_s = j.at("wall_s").get<double>();
  c.x = j.at("x").get<std::vector<double>>();
  c.failed = j.at("failed").get<bool>();
  c.failure = j.at("failure").get<std::string>();
  const nlohmann::json& t = j.at("trajectory");
  c.trajectory = {t.at("t").get<std::vector<double>>(), t.at("x").get<std::vector<double>>(),
                  t.at("reference").get<std::vector<double>>()};
  return c;
}

// A file-system operation whose failure is an I/O error naming the path (not bad input).
template <class F>
void filesystem_step(const std::string& path, const std::string& what, F&& f) {
  try {
    f();
  } catch (const std::filesystem::filesystem_error& e) {
    throw IoError(path, what + " failed: " + e.code().message());
  }
}

void write_text_atomically(const std::string& path, const std::string& text) {
  const std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) throw IoError(temp, "writing the checkpoint failed (disk full or read-only?)");
  }
  filesystem_step(path, "renaming the checkpoint into place",
                  [&] { std::filesystem::rename(temp, path); });
}

std::string cell_file(const std::string& dir, size_t k) {
  return dir + "/cell-" + std::to_string(k) + ".json";
}

// Opens (or, resuming, checks) the checkpoint directory of a run: its config.json must be the
// run's normalised config, so that cells of another config are never mixed in.
void open_checkpoint(const std::string& dir, const ExperimentConfig& c, bool resume) {
  namespace fs = std::filesystem;
  const std::string config_file = dir + "/config.json";
  if (resume && fs::exists(config_file)) {
    std::ifstream in(config_file);
    std::stringstream text;
    text << in.rdbuf();
    const nlohmann::json saved = nlohmann::json::parse(text.str(), nullptr, false);
    require(!saved.is_discarded() && saved == c.normalized, "--resume", dir,
            "holds the checkpoint of a different config; pass --force instead to start over");
    return;
  }
  filesystem_step(dir, "creating the checkpoint directory", [&] { fs::create_directories(dir); });
  write_text_atomically(config_file, c.normalized.dump(2));
}

template <class Scalar>
ExperimentResult run_in(const ExperimentConfig& c, const RunOptions& options) {
  ExperimentResult result;
  result.config = c;
  const auto data = make_target<Scalar>(c.target, "target");
  const auto sde = make_sde<Scalar>(c.sde, c.data_dim, "sde");
  const AnalyticDenoiser<Scalar> model(*sde, data);
  const Scalar t_start = from_double<Scalar>(c.t_start), t_end = from_double<Scalar>(c.t_end);
  const bool stochastic = c.kind == "stochastic";

  // Initial states (D x n).
  Mat<Scalar> x0;
  if (!c.init_points.empty()) {
    x0.resize(c.state_dim, static_cast<Eigen::Index>(c.init_points.size()));
    for (size_t j = 0; j < c.init_points.size(); ++j)
      for (int i = 0; i < c.state_dim; ++i) x0(i, j) = from_double<Scalar>(c.init_points[j][i]);
  } else {
    Rng rng(c.init_seed);
    x0 = Marginal<Scalar>(*sde, data, t_start).sample(c.init_count, rng);
  }
  result.particles = static_cast<int>(x0.cols());
  result.init = row_major(x0);

  Problem<Scalar> problem;
  problem.sde = sde.get();
  problem.model = &model;
  problem.seed = c.seed;
  if (stochastic) problem.brownian_levels = c.brownian_levels;

  // The reference. Deterministic kinds: the flow in 50 digits, the exact flow map where one
  // exists, else Bulirsch-Stoer (trajectory runs also use it at every grid time). Stochastic:
  // Euler-Maruyama on every interval of the shared Brownian path.
  const auto data50 = make_target<mp50>(c.target, "target");
  const auto sde50 = make_sde<mp50>(c.sde, c.data_dim, "sde");
  const bool has_exact = data50.components() == 1;
  require(c.reference != "exact" || has_exact || stochastic, "reference", "exact",
          "needs Gaussian or Dirac data (one component); use \"auto\" or \"mp50\"");
  const bool use_exact = has_exact && c.reference != "mp50";
  Mat<Scalar> reference;
  if (stochastic) {
    const auto em = make_solver<Scalar>(nlohmann::json("euler-maruyama"));
    const auto grid = make_time_grid<Scalar>(*sde, c.grid, t_start, t_end, 1 << c.brownian_levels);
    reference = solve(*em, problem, grid, x0).x;
    result.reference_method = "euler-maruyama on all 2^" + std::to_string(c.brownian_levels) +
                              " intervals of the shared Brownian path";
    result.reference_tolerance = 0;
  } else {
    const Mat<mp50> x50 = x0.template cast<mp50>();
    const mp50 s50 = from_double<mp50>(c.t_start), e50 = from_double<mp50>(c.t_end);
    Mat<mp50> ref;
    ProgressStage stage(options.progress, "reference", static_cast<size_t>(x50.cols()));
    if (use_exact) {
      ref = exact_flow_map(*sde50, data50, x50, s50, e50);
      stage.done("exact flow map", static_cast<size_t>(x50.cols()));
      result.reference_method = "exact flow map (50 digits)";
      result.reference_tolerance = 0;
    } else {
      ReferenceStats stats;
      stats.on_particle = [&](Eigen::Index, Eigen::Index) { stage.done("particles, 50 digits"); };
      ref =
          reference_flow<mp50>(*sde50, data50, x50, s50, e50, reference_tolerance<mp50>(), &stats);
      result.reference_method = "Bulirsch-Stoer PF-ODE solve (50 digits)";
      result.reference_tolerance = 1e-32;
    }
    reference = ref.template cast<Scalar>();
  }
  result.reference = row_major(reference);

  // The cells, in a fixed order; threads take them one by one (each is independent, so the
  // results do not depend on the thread count).
  // Each solver's cells: its NFE budgets, or its tolerances when it is adaptive.
  const int block_size = sde->covariance(t_end).block_size();
  std::vector<nlohmann::json> cell_spec;
  std::vector<std::pair<size_t, size_t>> cell_index;
  for (size_t si = 0; si < c.solvers.size(); ++si) {
    const auto solver = make_solver<Scalar>(c.solvers[si]);
    const SolverInfo& info = solver->info();
    SolverRun run;
    run.label = info.label;
    run.name = info.name;
    run.reference = info.reference;
    run.declared_order = declared_order(c.solvers[si], block_size);
    run.declared_weak_order = info.weak_order;
    run.adaptive = info.adaptive;
    const size_t m = info.adaptive ? c.tolerances.size() : c.nfe.size();
    run.cells.resize(m);
    for (size_t ci = 0; ci < m; ++ci) {
      nlohmann::json spec =
          c.solvers[si].is_string() ? nlohmann::json{{"name", c.solvers[si]}} : c.solvers[si];
      if (info.adaptive) {
        spec["tolerance"] = c.tolerances[ci];
        spec["label"] = info.label;
        run.cells[ci].tolerance = c.tolerances[ci];
      } else {
        run.cells[ci].nfe_target = c.nfe[ci];
      }
      cell_spec.push_back(spec);
      cell_index.emplace_back(si, ci);
    }
    result.solvers.push_back(std::move(run));
  }
  const size_t cells = cell_index.size();
  result.cells_total = cells;

  // Cells finished by an earlier, interrupted run of the same config.
  const bool checkpointing = !options.checkpoint_dir.empty();
  std::vector<char> done(cells, 0);
  if (checkpointing) {
    open_checkpoint(options.checkpoint_dir, c, options.resume);
    for (size_t k = 0; options.resume && k < cells; ++k) {
      const std::string file = cell_file(options.checkpoint_dir, k);
      if (!std::filesystem::exists(file)) continue;
      std::ifstream in(file);
      std::stringstream text;
      text << in.rdbuf();
      const nlohmann::json j = nlohmann::json::parse(text.str(), nullptr, false);
      if (j.is_discarded()) continue;  // (cannot happen: cell files are renamed into place)
      const auto [si, ni] = cell_index[k];
      result.solvers[si].cells[ni] = cell_from_json(j);
      done[k] = 1;
    }
  }

  std::atomic<size_t> next{0};
  std::mutex report;
  ProgressStage stage(options.progress, "cells",
                      cells - static_cast<size_t>(std::count(done.begin(), done.end(), 1)));
  auto worker = [&] {
    for (size_t k = next++; k < cells; k = next++) {
      if (done[k]) continue;
      if (options.stop && options.stop->load()) break;
      const auto [si, ni] = cell_index[k];
      CellResult& cell = result.solvers[si].cells[ni];
      try {
        const auto solver = make_solver<Scalar>(cell_spec[k]);
        const int steps = solver->info().adaptive
                              ? 1
                              : std::max(1, c.nfe[ni] / std::max(1, solver->info().evals_per_step));
        const auto grid = make_time_grid<Scalar>(*sde, c.grid, t_start, t_end, steps);
        Problem<Scalar> cell_problem = problem;
        std::vector<Mat<Scalar>> states;
        if (c.kind == "trajectory") {
          states.push_back(x0);
          cell_problem.on_step = [&states](int, const Scalar&, const Mat<Scalar>& x) {
            states.push_back(x);
          };
        }
        SolveResult<Scalar> r = solve(*solver, cell_problem, grid, x0);
        if (c.kind == "trajectory")
          record_trajectory(*sde50, data50, use_exact, grid, states, cell.trajectory);
        // Work-precision timings: the fastest of three identical runs (timer noise at the
        // millisecond scale otherwise dominates).
        if (c.kind == "work-precision")
          for (int rep = 1; rep < 3; ++rep)
            r.wall_s = std::min(r.wall_s, solve(*solver, problem, grid, x0).wall_s);
        cell.nfe = r.nfe;
        cell.steps = r.steps;
        cell.wall_s = r.wall_s;
        cell.x = row_major(r.x);
        const Mat<Scalar> exact_diff = r.x - reference;
        cell.err_max = to_double(Scalar(exact_diff.cwiseAbs().maxCoeff()));
        cell.err_rms = std::sqrt(to_double(Scalar(exact_diff.squaredNorm())) /
                                 static_cast<double>(exact_diff.size()));
        if (stochastic) cell.err_weak = weak_error(r.x, reference);
      } catch (const std::exception& e) {
        cell.failed = true;
        cell.failure = e.what();
        cell.err_max = cell.err_rms = cell.err_weak = std::nan("");
      }
      if (checkpointing)
        write_text_atomically(cell_file(options.checkpoint_dir, k), cell_to_json(cell).dump());
      done[k] = 1;
      {
        std::lock_guard<std::mutex> lock(report);
        stage.done(result.solvers[si].label +
                   (result.solvers[si].adaptive ? " tolerance " + to_text(cell.tolerance)
                                                : " nfe " + std::to_string(cell.nfe_target)) +
                   (cell.failed ? " failed: " + cell.failure : ""));
      }
    }
  };
  const int threads = std::max(1, std::min<int>(options.threads, static_cast<int>(cells)));
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  result.cells_done = static_cast<size_t>(std::count(done.begin(), done.end(), 1));
  if (result.cells_done < cells) return result;  // stopped: the caller reports, nothing fitted

  const double floor = 100 * to_double(eps<Scalar>()) *
                       std::max(1.0, to_double(Scalar(reference.cwiseAbs().maxCoeff())));
  for (auto& run : result.solvers) {
    if (run.adaptive) continue;  // no step ladder: the fitted order stays NaN
    // Strong errors of stochastic samplers are mean-square (err_rms over the paths).
    std::vector<Level> levels, weak_levels;
    for (const auto& cell : run.cells) {
      Level l;
      l.steps = static_cast<int>(cell.nfe);
      l.nfe = cell.nfe;
      l.err_max = stochastic ? cell.err_rms : cell.err_max;
      l.failed = cell.failed;
      levels.push_back(l);
      l.err_max = cell.err_weak;
      weak_levels.push_back(l);
    }
    run.fit = fit_order(levels, floor, c.fit_levels);
    if (stochastic) run.weak_fit = fit_order(weak_levels, floor, c.fit_levels);
  }
  return result;
}

}  // namespace

Provenance current_provenance() {
  Provenance p;
  const std::string src = PFLOW_SOURCE_DIR;
  p.git_commit = shell("git -C '" + src + "' rev-parse HEAD 2>/dev/null");
  if (p.git_commit.empty()) p.git_commit = "unknown";
  // Dirty = uncommitted changes to the code; results/ is what runs write, so it does not count.
  const std::string status =
      shell("git -C '" + src + "' status --porcelain -- . ':!results' 2>/dev/null");
  p.git_dirty = p.git_commit == "unknown" ? "unknown" : (status.empty() ? "false" : "true");
  p.pflow_version = PFLOW_VERSION;
  char buf[64];
  const std::time_t now = std::time(nullptr);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  p.created_utc = buf;
  char host[256] = "unknown";
  gethostname(host, sizeof host);
  p.host = host;
  p.compiler = std::string("g++ ") + __VERSION__;
  std::ostringstream libs;
  libs << "Eigen " << EIGEN_WORLD_VERSION << "." << EIGEN_MAJOR_VERSION << "."
       << EIGEN_MINOR_VERSION << "; Boost " << BOOST_LIB_VERSION << "; HDF5 " << H5_VERS_INFO
       << "; nlohmann_json " << NLOHMANN_JSON_VERSION_MAJOR << "." << NLOHMANN_JSON_VERSION_MINOR
       << "." << NLOHMANN_JSON_VERSION_PATCH;
  p.libraries = libs.str();
  return p;
}

ExperimentResult run_convergence(const ExperimentConfig& config, const RunOptions& options) {
  require(config.kind != "kernel", "kind", config.kind, "has no solver cells (use run_kernel)");
  if (config.precision == "mp50") return run_in<mp50>(config, options);
  return run_in<double>(config, options);
}

namespace {

void write_provenance(h5::File& f, const std::string& config_json) {
  const Provenance p = current_provenance();
  f.attribute("/", "config_json", config_json);
  f.attribute("/", "git_commit", p.git_commit);
  f.attribute("/", "git_dirty", p.git_dirty);
  f.attribute("/", "pflow_version", p.pflow_version);
  f.attribute("/", "created_utc", p.created_utc);
  f.attribute("/", "schema_version", std::string("1"));
  f.attribute("/", "host", p.host);
  f.attribute("/", "compiler", p.compiler);
  f.attribute("/", "libraries", p.libraries);
}

// Writes through `fill` into a temporary file beside `path`, then renames it into place.
template <class Fill>
void write_atomically(const std::string& path, Fill&& fill) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  if (target.has_parent_path())
    filesystem_step(path, "creating its directory",
                    [&] { fs::create_directories(target.parent_path()); });
  const std::string temp = path + ".tmp-" + std::to_string(getpid());
  try {
    {
      h5::File f = h5::File::create(temp);
      fill(f);
      f.save();
    }
    filesystem_step(path, "renaming the finished file into place",
                    [&] { fs::rename(temp, target); });
  } catch (...) {
    std::error_code ignored;
    fs::remove(temp, ignored);
    throw;
  }
}

}  // namespace

void write_result(const ExperimentResult& r, const std::string& path) {
  require(r.cells_done == r.cells_total, "result", path,
          "is incomplete (" + std::to_string(r.cells_done) + " of " +
              std::to_string(r.cells_total) + " cells): resume the run to finish it");
  write_atomically(path, [&](h5::File& f) {
    write_provenance(f, r.config.normalized.dump());
    const size_t n = static_cast<size_t>(r.particles), d = static_cast<size_t>(r.config.state_dim);
    f.group("/init");
    f.dataset("/init/x", {n, d}, r.init);
    f.group("/reference");
    f.dataset("/reference/x", {n, d}, r.reference);
    f.attribute("/reference", "method", r.reference_method);
    f.attribute("/reference", "tolerance", r.reference_tolerance);
    f.group("/solvers");
    for (size_t si = 0; si < r.solvers.size(); ++si) {
      const SolverRun& s = r.solvers[si];
      const std::string g = "/solvers/" + s.label;
      f.group(g);
      std::vector<long> nfe, steps;
      std::vector<double> err_max, err_rms, weak, wall, x, tolerance;
      for (const auto& cell : s.cells) {
        tolerance.push_back(cell.tolerance);
        nfe.push_back(cell.nfe);
        steps.push_back(cell.steps);
        err_max.push_back(cell.err_max);
        err_rms.push_back(cell.err_rms);
        weak.push_back(cell.err_weak);
        wall.push_back(cell.wall_s);
        if (cell.failed) {
          x.insert(x.end(), n * d, std::nan(""));
        } else {
          x.insert(x.end(), cell.x.begin(), cell.x.end());
        }
      }
      const size_t m = s.cells.size();
      f.dataset(g + "/nfe", nfe);
      f.dataset(g + "/steps", steps);
      f.dataset(g + "/err_max", {m}, err_max);
      f.dataset(g + "/err_rms", {m}, err_rms);
      f.dataset(g + "/wall_s", {m}, wall);
      f.dataset(g + "/tolerance", {m}, tolerance);  // NaN for fixed-step solvers
      f.dataset(g + "/x", {m, n, d}, x);
      f.attribute(g, "name", s.name);
      f.attribute(g, "index", static_cast<double>(si));  // position in the config
      f.attribute(g, "reference", s.reference);
      f.attribute(g, "declared_order", static_cast<double>(s.declared_order));
      f.attribute(g, "fitted_order", s.fit.order);
      f.attribute(g, "pairwise_orders", s.fit.pairwise);
      if (r.config.kind == "stochastic") {
        f.dataset(g + "/err_weak", {m}, weak);
        f.attribute(g, "declared_weak_order", static_cast<double>(s.declared_weak_order));
        f.attribute(g, "fitted_weak_order", s.weak_fit.order);
        f.attribute(g, "weak_pairwise_orders", s.weak_fit.pairwise);
      }
      std::string failures;
      for (const auto& cell : s.cells)
        if (cell.failed)
          failures += (s.adaptive ? "tolerance " + to_text(cell.tolerance)
                                  : "nfe " + std::to_string(cell.nfe_target)) +
                      ": " + cell.failure + "\n";
      f.attribute(g, "failures", failures);
      if (r.config.kind == "trajectory")
        for (const auto& cell : s.cells) {
          if (cell.failed) continue;
          const std::string tg = g + "/trajectory_nfe_" + std::to_string(cell.nfe_target);
          const size_t points = cell.trajectory.t.size();
          f.group(tg);
          f.dataset(tg + "/t", {points}, cell.trajectory.t);
          f.dataset(tg + "/x", {points, n, d}, cell.trajectory.x);
          f.dataset(tg + "/reference", {points, n, d}, cell.trajectory.reference);
        }
    }
  });
}

void run_kernel(const ExperimentConfig& c, const std::string& path) {
  const auto sde = make_sde<double>(c.sde, c.data_dim, "sde");
  const auto data = make_target<double>(c.target, "target");
  const size_t T = c.times.size(), D = static_cast<size_t>(c.state_dim);
  std::vector<double> sigma, sigma_n, psi, psi_n, mean, mean_n, lambda, q;
  const auto* scalar = dynamic_cast<const ScalarSde<double>*>(sde.get());
  Vec<double> mu = Vec<double>::Zero(c.data_dim);
  for (int k = 0; k < data.components(); ++k) mu += data.weights()(k) * data.means().col(k);
  auto push = [](std::vector<double>& out, const Mat<double>& m) {
    for (Eigen::Index i = 0; i < m.rows(); ++i)
      for (Eigen::Index j = 0; j < m.cols(); ++j) out.push_back(m(i, j));
  };
  auto ambient = [&](const BlockMatrix<double>& b) {
    const Mat<double> dense = b.to_dense();
    if (!sde->has_spectral_basis()) return dense;
    // U B U^T from the spectral basis maps.
    return Mat<double>(sde->from_spectral(Mat<double>(sde->from_spectral(dense).transpose())));
  };
  for (double t : c.times) {
    push(sigma, ambient(sde->covariance(t)));
    push(sigma_n, ambient(ode_covariance(*sde, t)));
    push(psi, ambient(sde->transition(t, 0.0)));
    const BlockMatrix<double> psi_ode = ode_transition(*sde, t, 0.0);
    push(psi_n, ambient(psi_ode));
    push(mean, sde->mean(t, mu));
    push(mean_n, sde->from_spectral(psi_ode.apply(sde->lift_data(mu))));
    lambda.push_back(scalar && t > 0 ? scalar->lambda(t) : std::nan(""));
    Mat<double> circulation = Mat<double>::Constant(D, D, std::nan(""));
    try {
      if (t > 0) circulation = ambient(frozen_equilibrium(*sde, t).circulation);
    } catch (const std::exception&) {
    }
    push(q, circulation);
  }
  write_atomically(path, [&](h5::File& f) {
    write_provenance(f, c.normalized.dump());
    f.group("/kernel");
    f.dataset("/kernel/times", {T}, c.times);
    f.dataset("/kernel/sigma", {T, D, D}, sigma);
    f.dataset("/kernel/sigma_numeric", {T, D, D}, sigma_n);
    f.dataset("/kernel/psi", {T, D, D}, psi);
    f.dataset("/kernel/psi_numeric", {T, D, D}, psi_n);
    f.dataset("/kernel/mean", {T, D}, mean);
    f.dataset("/kernel/mean_numeric", {T, D}, mean_n);
    f.dataset("/kernel/lambda", {T}, lambda);
    f.dataset("/kernel/q", {T, D, D}, q);
    f.attribute("/kernel", "mean_of", std::string("the data mean"));
  });
}

}  // namespace pflow
