#include "pflow/experiment/run.hpp"

#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <H5Cpp.h>

#include <algorithm>
#include <atomic>
#include <boost/version.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "pflow/core/json_fields.hpp"
#include "pflow/experiment/cluster.hpp"
#include "pflow/experiment/h5.hpp"
#include "pflow/experiment/kinds.hpp"
#include "pflow/experiment/table.hpp"
#include "pflow/model/denoisers.hpp"
#include "pflow/model/mlp_file.hpp"
#include "pflow/sde/factory.hpp"
#include "pflow/sde/kernel_numeric.hpp"
#include "pflow/target/data_source.hpp"
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

// Checkpoint files: per finished cell a JSON file and, beside it, the cell's final states as raw
// doubles (cell-K.x.f64, this machine's byte order): a million 2-D states are 16 MB there, against
// ~130 MB for the same numbers as a JSON tree and its text. The JSON file is renamed into place
// last, so a cell counts as done only when both files are complete. Doubles round-trip exactly
// through nlohmann's shortest representation; NaN (failed cells, fixed-step tolerances) is stored
// as null.
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
          {"err_total_max", number_or_null(c.err_total_max)},
          {"err_total_rms", number_or_null(c.err_total_rms)},
          {"sw2", number_or_null(c.sw2)},
          {"mean_log_p0", number_or_null(c.mean_log_p0)},
          {"log_density", c.log_density},
          {"log_density_se", c.log_density_se},
          {"roundtrip_max", number_or_null(c.roundtrip_max)},
          {"roundtrip_rms", number_or_null(c.roundtrip_rms)},
          {"x_decoded", c.x_decoded},
          {"components", c.components},
          {"switches", c.switches},
          {"switch_pairs", c.switch_pairs},
          {"series", c.series},
          {"wall_s", c.wall_s},
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
  // Absent from the checkpoints of pflow before learned models: NaN, as an analytic run has.
  c.err_total_max = number_or_nan(j.value("err_total_max", nlohmann::json()));
  c.err_total_rms = number_or_nan(j.value("err_total_rms", nlohmann::json()));
  c.sw2 = number_or_nan(j.value("sw2", nlohmann::json()));
  c.mean_log_p0 = number_or_nan(j.value("mean_log_p0", nlohmann::json()));
  c.log_density = j.value("log_density", std::vector<double>());
  c.log_density_se = j.value("log_density_se", std::vector<double>());
  c.roundtrip_max = number_or_nan(j.value("roundtrip_max", nlohmann::json()));
  c.roundtrip_rms = number_or_nan(j.value("roundtrip_rms", nlohmann::json()));
  c.x_decoded = j.value("x_decoded", std::vector<double>());
  c.components = j.value("components", std::vector<double>());
  c.switches = j.value("switches", std::vector<double>());
  c.switch_pairs = j.value("switch_pairs", std::vector<double>());
  c.series = j.value("series", std::map<std::string, std::vector<double>>());
  c.wall_s = j.at("wall_s").get<double>();
  if (j.at("x").is_array()) c.x = j.at("x").get<std::vector<double>>();  // before cell-K.x.f64
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

// Writes `size` bytes to a temporary name beside `path`, then renames it into place.
void write_bytes_atomically(const std::string& path, const char* data, std::size_t size) {
  const std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out.write(data, static_cast<std::streamsize>(size));
    out.flush();
    if (!out) throw IoError(temp, "writing the checkpoint failed (disk full or read-only?)");
  }
  filesystem_step(path, "renaming the checkpoint into place",
                  [&] { std::filesystem::rename(temp, path); });
}
void write_text_atomically(const std::string& path, const std::string& text) {
  write_bytes_atomically(path, text.data(), text.size());
}

std::string cell_file(const std::string& dir, size_t k) {
  return dir + "/cell-" + std::to_string(k) + ".json";
}
std::string cell_states_file(size_t k) {
  return "cell-" + std::to_string(k) + ".x.f64";
}

void write_cell_checkpoint(const std::string& dir, size_t k, const CellResult& cell) {
  write_bytes_atomically(dir + "/" + cell_states_file(k),
                         reinterpret_cast<const char*>(cell.x.data()),
                         cell.x.size() * sizeof(double));
  nlohmann::json j = cell_to_json(cell);
  j["x"] = {{"file", cell_states_file(k)}, {"values", cell.x.size()}};
  write_text_atomically(cell_file(dir, k), j.dump());
}

// The states of a checkpointed cell from its cell-K.x.f64; false if the file is missing or not
// the size its JSON file gives.
bool read_cell_states(const std::string& dir, const nlohmann::json& entry, CellResult& cell) {
  if (!entry.is_object()) return true;  // an older checkpoint: the states were in the JSON
  const size_t values = entry.at("values").get<size_t>();
  std::ifstream in(dir + "/" + entry.at("file").get<std::string>(), std::ios::binary);
  cell.x.resize(values);
  in.read(reinterpret_cast<char*>(cell.x.data()),
          static_cast<std::streamsize>(values * sizeof(double)));
  return in && in.peek() == std::ifstream::traits_type::eof();
}

// Opens (or, resuming, checks) the checkpoint directory of a run: its config.json must be the
// run's normalised config, with the SHA-256 of a learned model's file, so that cells of another
// config or of a retrained network are never mixed in.
void open_checkpoint(const std::string& dir, const ExperimentConfig& c, bool resume,
                     const std::string& model_sha256) {
  namespace fs = std::filesystem;
  const std::string config_file = dir + "/config.json";
  nlohmann::json expected = c.normalized;
  if (!model_sha256.empty()) expected["checkpoint_model_sha256"] = model_sha256;
  if (resume && fs::exists(config_file)) {
    const nlohmann::json saved =
        parse_json_text(read_text_file(config_file).value_or(""), "--resume", config_file);
    require(!saved.is_discarded() && saved == expected, "--resume", dir,
            "holds the checkpoint of a different config (or model file); pass --force instead "
            "to start over");
    return;
  }
  filesystem_step(dir, "creating the checkpoint directory", [&] { fs::create_directories(dir); });
  write_text_atomically(config_file, expected.dump(2));
}

// init.points, or init.count samples of p_t at t = `time` (t_start, or t_end for kinds that
// start on the data side).
template <class Scalar>
Mat<Scalar> initial_states(const ExperimentConfig& c, const LinearSde<Scalar>& sde,
                           const DataSource<Scalar>& data, double time) {
  if (c.init_points.empty()) {
    Rng rng(c.init_seed);
    return data.sample_marginal(sde, from_double<Scalar>(time), c.init_count, rng);
  }
  Mat<Scalar> x0(c.state_dim, static_cast<Eigen::Index>(c.init_points.size()));
  for (size_t j = 0; j < c.init_points.size(); ++j)
    for (int i = 0; i < c.state_dim; ++i) x0(i, j) = from_double<Scalar>(c.init_points[j][i]);
  return x0;
}

// The cells in a fixed order (solver by solver, NFE or tolerance ascending), each with the spec
// its solver is built from; the result gets one SolverRun per solver with its cells laid out.
struct CellPlan {
  std::vector<nlohmann::json> spec;
  std::vector<std::pair<size_t, size_t>> index;  // (solver, cell)
};

CellPlan plan_cells(const ExperimentConfig& c, int block_size, ExperimentResult& result) {
  CellPlan plan;
  for (size_t si = 0; si < c.solvers.size(); ++si) {
    const SolverInfo info = make_solver<double>(c.solvers[si])->info();
    SolverRun run;
    run.label = info.label;
    run.name = info.name;
    run.reference = info.reference;
    run.declared_order = declared_order(c.solvers[si], block_size);
    run.declared_weak_order = info.weak_order;
    run.adaptive = info.adaptive;
    run.cells.resize(info.adaptive ? c.tolerances.size() : c.nfe.size());
    for (size_t ci = 0; ci < run.cells.size(); ++ci) {
      nlohmann::json spec =
          c.solvers[si].is_string() ? nlohmann::json{{"name", c.solvers[si]}} : c.solvers[si];
      if (info.adaptive) {
        spec["tolerance"] = c.tolerances[ci];
        spec["label"] = info.label;
        run.cells[ci].tolerance = c.tolerances[ci];
      } else {
        run.cells[ci].nfe_target = c.nfe[ci];
      }
      plan.spec.push_back(spec);
      plan.index.emplace_back(si, ci);
    }
    result.solvers.push_back(std::move(run));
  }
  result.cells_total = plan.index.size();
  return plan;
}

// Cells finished by an earlier, interrupted run of the same config (with `resume`).
std::vector<char> load_checkpoint(const ExperimentConfig& c, const RunOptions& options,
                                  const CellPlan& plan, ExperimentResult& result) {
  std::vector<char> done(plan.index.size(), 0);
  if (options.checkpoint_dir.empty()) return done;
  open_checkpoint(options.checkpoint_dir, c, options.resume, result.model_sha256);
  for (size_t k = 0; options.resume && k < plan.index.size(); ++k) {
    const std::string file = cell_file(options.checkpoint_dir, k);
    if (!std::filesystem::exists(file)) continue;
    const std::string text = read_text_file(file).value_or("");
    if (json_nesting_excess(text, max_json_depth) >= 0) continue;  // not ours: run it again
    const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded()) continue;  // (cannot happen: cell files are renamed into place)
    CellResult cell = cell_from_json(j);
    if (!read_cell_states(options.checkpoint_dir, j.at("x"), cell)) continue;  // run it again
    const auto [si, ci] = plan.index[k];
    result.solvers[si].cells[ci] = std::move(cell);
    done[k] = 1;
  }
  return done;
}

// Runs one stage of a run (the reference, the analytic flow). A failure that is not about input or
// I/O (a library's step control giving up, a factorisation failing) comes back as a
// NumericalError naming the stage, its method (`method`, once known), the time span the config
// sets and what to change, so that no raw library message reaches the user alone.
template <class F>
auto with_stage_context(const std::string& stage, const ExperimentConfig& c, F&& work,
                        const std::string* method = nullptr) {
  try {
    return work();
  } catch (const InputError&) {
    throw;
  } catch (const IoError&) {
    throw;
  } catch (const std::exception& e) {
    std::string where = stage, why = e.what();
    if (method != nullptr && !method->empty()) where += " (" + *method + ")";
    while (!why.empty() && (why.back() == '.' || why.back() == ' ')) why.pop_back();
    throw NumericalError(
        where + " failed between time.t_start = " + to_text(c.t_start) +
        " and time.t_end = " + to_text(c.t_end) + ": " + why +
        ". The end of the span is where the flow is stiffest (its rate grows like "
        "1/sigma(t)^2): raise time.t_end, or for Gaussian data use \"reference\": \"exact\"");
  }
}

// One cell through its kind; any failure is recorded in the cell (the sweep goes on).
template <class Kind, class Scalar>
void run_cell(const Kind& kind, const RunSetup<Scalar>& setup, const Mat<Scalar>& reference,
              const Mat<Scalar>* analytic, const nlohmann::json& spec, CellResult& cell) {
  try {
    const auto solver = make_solver<Scalar>(spec);
    const SolverInfo& info = solver->info();
    const int steps =
        info.adaptive ? 1 : std::max(1, cell.nfe_target / std::max(1, info.evals_per_step));
    const CellRun<Scalar> run{
        setup, *solver,
        make_time_grid<Scalar>(setup.sde, setup.config.grid, setup.t_start, setup.t_end, steps),
        reference, analytic};
    kind.run_cell(run, cell);
  } catch (const std::exception& e) {
    cell.failed = true;
    cell.failure = e.what();
    cell.err_max = cell.err_rms = cell.err_weak = std::nan("");
  }
}

// A cell's result as bytes and back (a cell another rank ran): its checkpoint JSON, a NUL, and
// its final states as raw doubles.
std::string pack_cell(CellResult&& cell) {
  nlohmann::json j = cell_to_json(cell);
  j["x"] = nullptr;
  std::string out = j.dump();
  out += '\0';
  out.append(reinterpret_cast<const char*>(cell.x.data()), cell.x.size() * sizeof(double));
  return out;
}
CellResult unpack_cell(const std::string& bytes) {
  const size_t split = bytes.find('\0');
  CellResult cell = cell_from_json(nlohmann::json::parse(bytes.substr(0, split)));
  cell.x.resize((bytes.size() - split - 1) / sizeof(double));
  std::memcpy(cell.x.data(), bytes.data() + split + 1, cell.x.size() * sizeof(double));
  return cell;
}

// The order cells are handed out in: most expensive first, as estimated by their NFE (an adaptive
// cell by its tolerance: ~tol^(-1/5) steps of a fifth-order pair), so that the longest cells do
// not start last and leave the other ranks idle at the end.
std::vector<size_t> cells_by_cost(const ExperimentResult& result, const CellPlan& plan,
                                  const std::vector<char>& done) {
  std::vector<std::pair<double, size_t>> cost;
  for (size_t k = 0; k < plan.index.size(); ++k) {
    if (done[k]) continue;
    const auto [si, ci] = plan.index[k];
    const CellResult& cell = result.solvers[si].cells[ci];
    cost.emplace_back(result.solvers[si].adaptive ? 6 * std::pow(cell.tolerance, -0.2)
                                                  : static_cast<double>(cell.nfe_target),
                      k);
  }
  std::stable_sort(cost.begin(), cost.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<size_t> order;
  for (const auto& [c, k] : cost) order.push_back(k);
  return order;
}

// The cells not yet done, handed out most expensive first to `cell_threads` workers (per rank,
// when the run is distributed); each cell is independent, so the results depend neither on the
// thread count nor on the ranks. Rank 0 checkpoints each finished cell.
template <class Kind, class Scalar>
void run_cells(const Kind& kind, const RunSetup<Scalar>& setup, const Mat<Scalar>& reference,
               const Mat<Scalar>* analytic, const CellPlan& plan, const RunOptions& options,
               int cell_threads, std::vector<char>& done, ExperimentResult& result) {
  const size_t cells = plan.index.size();
  ProgressStage stage(options.progress, "cells",
                      cells - static_cast<size_t>(std::count(done.begin(), done.end(), 1)));
  const auto cell_of = [&](size_t k) -> CellResult& {
    const auto [si, ci] = plan.index[k];
    return result.solvers[si].cells[ci];
  };
  cluster::Schedule schedule;
  schedule.phase = "cells";
  schedule.order = cells_by_cost(result, plan, done);
  schedule.workers = cell_threads;
  // A cell's own failure is recorded in the cell (run_cell); a failure outside it (a checkpoint
  // that cannot be written) stops the sweep and is rethrown.
  schedule.run = [&](size_t k) {
    run_cell(kind, setup, reference, analytic, plan.spec[k], cell_of(k));
  };
  schedule.pack = [&](size_t k) { return pack_cell(std::move(cell_of(k))); };
  schedule.unpack = [&](size_t k, const std::string& bytes) { cell_of(k) = unpack_cell(bytes); };
  schedule.finished = [&](size_t k) {
    const CellResult& cell = cell_of(k);
    if (!options.checkpoint_dir.empty()) write_cell_checkpoint(options.checkpoint_dir, k, cell);
    done[k] = 1;
    const SolverRun& run = result.solvers[plan.index[k].first];
    stage.done(run.label +
               (run.adaptive ? " tolerance " + to_text(cell.tolerance)
                             : " nfe " + std::to_string(cell.nfe_target)) +
               (cell.failed ? " failed: " + cell.failure : ""));
  };
  schedule.stop = options.stop;
  schedule.trace = &result.schedule;
  schedule.clock_origin = result.clock_origin;
  cluster::run_schedule(schedule, options.distributed);
  result.cells_done = static_cast<size_t>(std::count(done.begin(), done.end(), 1));
}

// States as bytes and back (between ranks, and in the checkpoint of a reference chunk): doubles
// and float128 numbers as their bytes, 50-digit numbers as decimal text with every digit
// (max_digits10, which reads back exactly), one per line.
template <class Scalar, class Derived>
std::string pack_states(const Eigen::MatrixBase<Derived>& x) {
  const Mat<Scalar> m = x;
  if constexpr (std::is_same_v<Scalar, double>) {
    return std::string(reinterpret_cast<const char*>(m.data()),
                       static_cast<size_t>(m.size()) * sizeof(double));
  } else if constexpr (std::is_same_v<Scalar, f128>) {
    std::string out(static_cast<size_t>(m.size()) * sizeof(__float128), '\0');
    for (Eigen::Index i = 0; i < m.size(); ++i) {
      const __float128 v = m.data()[i].backend().value();
      std::memcpy(out.data() + i * sizeof v, &v, sizeof v);
    }
    return out;
  } else {
    std::string out;
    for (Eigen::Index i = 0; i < m.size(); ++i)
      out += m.data()[i].str(std::numeric_limits<Scalar>::max_digits10, std::ios_base::scientific) +
             '\n';
    return out;
  }
}
// The rows x cols states of `bytes`; false if they are not that many.
template <class Scalar>
bool unpack_states(const std::string& bytes, Eigen::Index rows, Eigen::Index cols, Mat<Scalar>& x) {
  x.resize(rows, cols);
  const auto values = static_cast<size_t>(rows * cols);
  if constexpr (std::is_same_v<Scalar, double> || std::is_same_v<Scalar, f128>) {
    using Raw = std::conditional_t<std::is_same_v<Scalar, double>, double, __float128>;
    if (bytes.size() != values * sizeof(Raw)) return false;
    for (size_t i = 0; i < values; ++i) {
      Raw v;
      std::memcpy(&v, bytes.data() + i * sizeof v, sizeof v);
      x.data()[i] = Scalar(v);
    }
    return true;
  } else {
    std::istringstream in(bytes);
    std::string line;
    for (size_t i = 0; i < values; ++i) {
      if (!std::getline(in, line)) return false;
      x.data()[i] = Scalar(line);
    }
    return !std::getline(in, line);
  }
}

// Rank 0's states, with their method and tolerance, on every rank (x has its shape everywhere).
template <class Scalar>
void share_states(Mat<Scalar>& x, std::string& method, double& tolerance) {
  std::string bytes;
  if (cluster::root())
    bytes = nlohmann::json{{"method", method}, {"tolerance", tolerance}}.dump() + '\0' +
            pack_states<Scalar>(x);
  cluster::broadcast(bytes);
  if (cluster::root()) return;
  const size_t split = bytes.find('\0');
  const nlohmann::json h = nlohmann::json::parse(bytes.substr(0, split));
  method = h.at("method").get<std::string>();
  tolerance = h.at("tolerance").get<double>();
  if (!unpack_states<Scalar>(bytes.substr(split + 1), x.rows(), x.cols(), x))
    throw std::logic_error("rank 0 sent states of the wrong size");
}

// A stage computed particle by particle (a kind's default reference, the analytic flow of the
// data): chunks of consecutive particles are its work items, handed out like cells and, on rank
// 0, checkpointed as they finish (<stage>-K.json with the method, <stage>-K.states), so that a
// resumed run recomputes none of them. Each particle's result does not depend on the others, so
// the chunking changes no digit; the exact map keeps its chunks of 4096 (its products run over
// a chunk's columns at once), a Bulirsch-Stoer solve takes chunks of ~n/256 particles, one
// particle where n <= 256, so that many ranks share it. `compute` runs the stage on one chunk's
// set-up and names its method and tolerance. Returns false if the run was stopped first.
template <class Scalar, class Compute>
bool run_particle_stage(const std::string& phase, bool exact_map, const RunSetup<Scalar>& setup,
                        const RunOptions& options, ExperimentResult& result, Mat<Scalar>& out,
                        std::string& method, double& tolerance, Compute&& compute) {
  const ExperimentConfig& c = setup.config;
  const Eigen::Index n = setup.x0.cols(), d = setup.x0.rows();
  const Eigen::Index chunk = exact_map ? 4096 : std::max<Eigen::Index>(1, n / 256);
  const auto chunks = static_cast<size_t>((n + chunk - 1) / chunk);
  const auto first = [&](size_t k) { return static_cast<Eigen::Index>(k) * chunk; };
  const auto cols = [&](size_t k) { return std::min(chunk, n - first(k)); };
  out.resize(d, n);
  std::vector<std::string> methods(chunks);
  std::vector<double> tolerances(chunks, 0);
  std::vector<char> done(chunks, 0);
  std::string slug = phase;
  std::replace(slug.begin(), slug.end(), ' ', '-');
  const auto file = [&](size_t k, const char* ext) {
    return options.checkpoint_dir + "/" + slug + "-" + std::to_string(k) + ext;
  };
  const auto header = [&](size_t k) {
    return nlohmann::json{{"method", methods[k]}, {"tolerance", tolerances[k]}};
  };
  const auto store = [&](size_t k, const nlohmann::json& h, const std::string& states) {
    Mat<Scalar> x;
    if (!unpack_states<Scalar>(states, d, cols(k), x)) return false;
    out.middleCols(first(k), cols(k)) = x;
    methods[k] = h.at("method").get<std::string>();
    tolerances[k] = h.at("tolerance").get<double>();
    return true;
  };
  const auto read_text = [](const std::string& path) { return read_text_file(path).value_or(""); };
  if (cluster::root() && options.resume && !options.checkpoint_dir.empty()) {
    for (size_t k = 0; k < chunks; ++k) {
      if (!std::filesystem::exists(file(k, ".json"))) continue;
      const nlohmann::json h = nlohmann::json::parse(read_text(file(k, ".json")), nullptr, false);
      if (h.is_object() && h.contains("method") && h.contains("tolerance") &&
          store(k, h, read_text(file(k, ".states"))))
        done[k] = 1;  // else (not ours, or cut short): computed again
    }
  }
  ProgressStage stage(options.progress, phase, static_cast<size_t>(n));
  cluster::Schedule schedule;
  schedule.phase = phase;
  for (size_t k = 0; k < chunks; ++k) {
    if (done[k]) stage.done("checkpointed particles", static_cast<size_t>(cols(k)));
    if (!done[k]) schedule.order.push_back(k);
  }
  schedule.workers = options.threads;
  schedule.run = [&](size_t k) {
    RunSetup<Scalar> part = setup;
    part.x0 = setup.x0.middleCols(first(k), cols(k));
    part.threads = 1;
    part.progress = nullptr;
    out.middleCols(first(k), cols(k)) = with_stage_context(
        phase, c, [&] { return compute(part, methods[k], tolerances[k]); }, &methods[k]);
  };
  schedule.pack = [&](size_t k) {
    return header(k).dump() + '\0' + pack_states<Scalar>(out.middleCols(first(k), cols(k)));
  };
  schedule.unpack = [&](size_t k, const std::string& bytes) {
    const size_t split = bytes.find('\0');
    if (!store(k, nlohmann::json::parse(bytes.substr(0, split)), bytes.substr(split + 1)))
      throw std::logic_error("a rank sent a " + phase + " chunk of the wrong size");
  };
  schedule.finished = [&](size_t k) {
    if (!options.checkpoint_dir.empty()) {
      write_text_atomically(file(k, ".states"),
                            pack_states<Scalar>(out.middleCols(first(k), cols(k))));
      write_text_atomically(file(k, ".json"), header(k).dump());
    }
    stage.done(methods[k], static_cast<size_t>(cols(k)));
  };
  schedule.stop = options.stop;
  schedule.trace = &result.schedule;
  schedule.clock_origin = result.clock_origin;
  if (!cluster::run_schedule(schedule, options.distributed)) return false;
  method = methods.front();
  tolerance = tolerances.front();
  if (options.distributed) share_states(out, method, tolerance);
  return true;
}

// A path quoted for the shell.
std::string shell_quoted(const std::string& text) {
  std::string out = "'";
  for (char ch : text) out += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return out + "'";
}

// The run's learned model (a denoiser with a model file: "mlp", or "guided" over a network), read
// and checked before any work: the file (load_mlp_model), its dimension, its classes against the
// label the run asks for, and the SDE it was trained for against the run's.
std::optional<MlpModel> load_run_model(const ExperimentConfig& c, ExperimentResult& result) {
  if (!c.denoiser.contains("path")) return std::nullopt;
  const std::string path = config_relative_path(c, c.denoiser.at("path").get<std::string>());
  MlpModel m = load_mlp_model(path);
  // The class the network is asked for: the denoiser's label, or kind guidance's.
  const bool guided = c.denoiser.at("type") == "guided" || c.kind == "guidance";
  const std::string label_field = c.kind == "guidance" ? "guidance.label" : "denoiser.label";
  const int label = c.kind == "guidance"           ? c.guidance.at("label").get<int>()
                    : c.denoiser.contains("label") ? c.denoiser.at("label").get<int>()
                                                   : -1;
  if (label >= 0 || guided) {
    require(m.classes > 0, label_field, label,
            "model " + path +
                " is not class-conditional (its file has no 'classes' attribute): train one "
                "with \"model\": {\"conditional\": true}");
    require(label < m.classes, label_field, label,
            "model " + path + " knows classes 0 to " + std::to_string(m.classes - 1));
  }
  require(m.dim == c.state_dim, "denoiser.path", path,
          "the network takes " + to_text(m.dim) + " coordinates; the run's state has " +
              to_text(c.state_dim));
  const auto run_sde = make_sde<double>(c.sde, c.data_dim, "sde");
  require(c.denoiser.value("allow_sde_mismatch", false) ||
              same_kernel(*run_sde, *model_sde(m), c.t_end, c.t_start),
          "denoiser.path", path,
          "was trained for the SDE " + m.sde.dump() + ", not the config's " + c.sde.dump() +
              " (their kernels differ); set \"allow_sde_mismatch\": true to use it anyway");
  require(c.denoiser.value("allow_target_mismatch", false) || m.target == c.target, "denoiser.path",
          path,
          "was trained on the target " + m.target.dump() + ", not the config's " + c.target.dump() +
              "; set \"allow_target_mismatch\": true to use it anyway");
  // The time range it was trained on (files that record it): no silent extrapolation.
  const nlohmann::json range = m.training.value("resolved", nlohmann::json::object());
  if (range.contains("t_min") && range.contains("t_max"))
    require(c.denoiser.value("allow_time_extrapolation", false) ||
                (c.t_end >= range["t_min"].get<double>() * (1 - 1e-12) &&
                 c.t_start <= range["t_max"].get<double>() * (1 + 1e-12)),
            "denoiser.path", path,
            "was trained for t in [" + to_text(range["t_min"].get<double>()) + ", " +
                to_text(range["t_max"].get<double>()) + "], the run covers [" + to_text(c.t_end) +
                ", " + to_text(c.t_start) +
                "]; set \"allow_time_extrapolation\": true to use it anyway");
  result.model_file = path;
  const std::string sum = shell("sha256sum -- " + shell_quoted(path) + " 2>/dev/null");
  result.model_sha256 = sum.substr(0, sum.find(' '));
  return m;
}

// The knee of each fixed-step solver: the smallest NFE from which the discretisation error of
// every finished cell stays below the model error (0 when the largest NFE is not below it).
void find_knees(ExperimentResult& result) {
  for (SolverRun& run : result.solvers) {
    run.knee_nfe = 0;
    if (run.adaptive) continue;  // tolerance cells: no NFE ladder
    for (auto cell = run.cells.rbegin(); cell != run.cells.rend(); ++cell) {
      if (cell->failed) continue;
      if (!(cell->err_max < result.model_error_max)) break;
      run.knee_nfe = cell->nfe;
    }
  }
}

// A run with cells: initial states, the model, the kind's reference (and the analytic flow for a
// learned or perturbed model), the cells, the kind's fits.
template <class Scalar, class Kind>
void run_with_cells(const Kind& kind, const ExperimentConfig& c, const RunOptions& options,
                    ExperimentResult& result) {
  const auto data = DataSource<Scalar>::from_config(c.target, "target");
  const auto sde = make_sde<Scalar>(c.sde, c.data_dim, "sde");
  const std::optional<MlpModel> mlp = load_run_model(c, result);
  const MlpModel* file = mlp ? &*mlp : nullptr;
  const auto model = make_denoiser<Scalar>(c.denoiser, *sde, data.mixture(), file);
  const bool analytic_model = model->is_exact();
  const bool exact_available = data.mixture() && data.mixture()->components() == 1;
  const bool exact_in_run_precision = exact_available && exact_reference_in_run_precision(c);
  // The data in 50 digits only where a reference uses it: a d = 3072 covariance takes 600 MB
  // in 50 digits, and its Cholesky check minutes.
  const auto data50 = exact_in_run_precision && analytic_model
                          ? DataSource<mp50>()
                          : DataSource<mp50>::from_config(c.target, "target");
  const auto sde50 = make_sde<mp50>(c.sde, c.data_dim, "sde");
  const auto model50 =
      analytic_model ? nullptr : make_denoiser<mp50>(c.denoiser, *sde50, data50.mixture(), file);
  RunSetup<Scalar> setup(c, *sde, *sde50, data50.mixture());
  setup.problem.sde = sde.get();
  setup.problem.model = model.get();
  setup.problem.seed = c.seed;
  setup.problem.timing_repeats = c.timing_repeats;
  setup.model50 = model50.get();
  setup.mlp = file;
  setup.data = data.mixture();
  setup.x0 = initial_states(c, *sde, data, Kind::init_at_t_end ? c.t_end : c.t_start);
  setup.t_start = from_double<Scalar>(c.t_start);
  setup.t_end = from_double<Scalar>(c.t_end);
  setup.exact_available = exact_available;
  setup.exact_reference = analytic_model && exact_map_serves(setup);
  setup.exact_in_run_precision = exact_in_run_precision;
  setup.progress = &options.progress;
  setup.threads = options.threads;
  kind.configure(setup);
  result.particles = static_cast<int>(setup.x0.cols());
  const CellPlan plan = plan_cells(c, sde->covariance(setup.t_end).block_size(), result);
  // A learned or perturbed model: the analytic flow of the data from the same initial states
  // (the error split needs a mixture target), and the model error (the model's flow against it).
  const bool split_model_error =
      !analytic_model && Kind::splits_model_error && data.mixture() && model->approximates_data();
  // Input the analytic flow needs, checked before any file is made.
  if ((reference_by_particle<Kind> && !setup.model50) || split_model_error)
    require_analytic_flow(setup);
  // Rank 0 alone opens (or, resuming, checks and reads) the checkpoint.
  std::vector<char> done(plan.index.size(), 0);
  cluster::on_root([&] { done = load_checkpoint(c, options, plan, result); });

  // The reference: particle chunk by chunk where the kind keeps the default one; else computed
  // whole (by rank 0, and shared).
  Mat<Scalar> reference;
  if constexpr (reference_by_particle<Kind>) {
    const bool exact_map = !setup.model50 && exact_map_serves(setup);
    if (!run_particle_stage(
            "reference", exact_map, setup, options, result, reference, result.reference_method,
            result.reference_tolerance,
            [&](const RunSetup<Scalar>& part, std::string& method, double& tolerance) {
              ExperimentResult r;
              Mat<Scalar> x = kind.reference(part, r);
              method = r.reference_method;
              tolerance = r.reference_tolerance;
              return x;
            }))
      return;  // stopped: the caller reports
  } else {
    const auto whole = [&] {
      return with_stage_context(
          "reference", c, [&] { return kind.reference(setup, result); }, &result.reference_method);
    };
    if (!options.distributed) {
      reference = whole();
    } else {
      reference.resize(setup.x0.rows(), setup.x0.cols());
      cluster::on_root([&] { reference = whole(); });
      share_states(reference, result.reference_method, result.reference_tolerance);
    }
  }
  result.reference = row_major(reference);
  Mat<Scalar> analytic;
  if (split_model_error) {
    double tolerance = 0;
    if (!run_particle_stage(
            "analytic flow", exact_map_serves(setup), setup, options, result, analytic,
            result.analytic_method, tolerance,
            [&](const RunSetup<Scalar>& part, std::string& method, double& tolerance) {
              return analytic_flow(part, method, tolerance);
            }))
      return;
    result.analytic_flow = row_major(analytic);
    std::tie(result.model_error_max, result.model_error_rms) =
        max_and_rms<Scalar>(reference - analytic);
  }
  // --threads: when every cell's particles split into chunks (solve_chunks: many particles,
  // deterministic fixed-step solvers), cells run one at a time with their chunks on all threads;
  // else cells run side by side, one thread each. Either way the results are the same.
  const bool split = std::all_of(plan.spec.begin(), plan.spec.end(), [&](const auto& spec) {
    return solve_chunks(make_solver<Scalar>(spec)->info(), setup.problem, setup.x0.cols()) > 1;
  });
  setup.problem.threads = split ? options.threads : 1;
  run_cells(kind, setup, reference, analytic.size() ? &analytic : nullptr, plan, options,
            split ? 1 : options.threads, done, result);
  // Copied only now, so that the cells' peak memory holds one copy of the initial states.
  result.init = row_major(setup.x0);
  // Only rank 0 holds every cell; a stopped run is reported by the caller.
  if (!cluster::root() || result.cells_done < result.cells_total) return;
  const double floor = 100 * to_double(eps<Scalar>()) *
                       std::max(1.0, to_double(Scalar(reference.cwiseAbs().maxCoeff())));
  kind.finish(result, floor);
  if (analytic.size()) find_knees(result);
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

ExperimentResult run_experiment(const ExperimentConfig& config, const RunOptions& options) {
  require_memory_fits(config, options.threads);
  ExperimentResult result;
  result.config = config;
  result.clock_origin = cluster::clock_seconds();
  result.ranks = options.distributed ? cluster::size() : 1;
  result.threads = options.threads;
  with_kind(config.kind, [&](const auto& kind) {
    if constexpr (std::decay_t<decltype(kind)>::has_cells) {
      if (config.precision == "mp50") {
        run_with_cells<mp50>(kind, config, options, result);
      } else if (config.precision == "float128") {
        run_with_cells<f128>(kind, config, options, result);
      } else {
        run_with_cells<double>(kind, config, options, result);
      }
    } else if (!options.distributed || cluster::root()) {
      kind.run_tables(config, result);  // tables: computed by rank 0 alone
    }
  });
  return result;
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
void write_atomically(const std::string& path, std::size_t expected_bytes, Fill&& fill) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  if (target.has_parent_path())
    filesystem_step(path, "creating its directory",
                    [&] { fs::create_directories(target.parent_path()); });
  const std::string temp = path + ".tmp-" + std::to_string(getpid());
  try {
    {
      h5::File f = h5::File::create(temp, expected_bytes);
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

// A solver's group: the datasets of its cells and its attributes; the kind adds its own.
template <class Kind>
void write_solver(h5::File& f, const Kind& kind, const ExperimentResult& r, size_t si) {
  const SolverRun& s = r.solvers[si];
  const size_t n = static_cast<size_t>(r.particles), d = static_cast<size_t>(r.config.state_dim);
  const std::string g = "/solvers/" + s.label;
  f.group(g);
  std::vector<long> nfe, steps;
  std::vector<double> err_max, err_rms, wall, tolerance;
  std::vector<const double*> x;  // each cell's final states (NaN where it failed), not copied
  std::string failures;
  for (const auto& cell : s.cells) {
    tolerance.push_back(cell.tolerance);
    nfe.push_back(cell.nfe);
    steps.push_back(cell.steps);
    err_max.push_back(cell.err_max);
    err_rms.push_back(cell.err_rms);
    wall.push_back(cell.wall_s);
    if (!cell.failed && cell.x.size() != n * d)
      throw std::logic_error("write_solver: a cell of " + s.label + " holds " +
                             std::to_string(cell.x.size()) + " values, not N d");
    x.push_back(cell.failed ? nullptr : cell.x.data());
    if (cell.failed) {
      failures += (s.adaptive ? "tolerance " + to_text(cell.tolerance)
                              : "nfe " + std::to_string(cell.nfe_target)) +
                  ": " + cell.failure + "\n";
    }
  }
  const size_t m = s.cells.size();
  f.dataset(g + "/nfe", nfe);
  f.dataset(g + "/steps", steps);
  f.dataset(g + "/err_max", {m}, err_max);
  f.dataset(g + "/err_rms", {m}, err_rms);
  f.dataset(g + "/wall_s", {m}, wall);
  f.dataset(g + "/tolerance", {m}, tolerance);  // NaN for fixed-step solvers
  if (r.config.store_states) f.dataset_slabs(g + "/x", {m, n, d}, x);
  if (!r.analytic_flow.empty()) {  // a learned or perturbed model: the error split
    std::vector<double> total_max, total_rms;
    for (const auto& cell : s.cells) {
      total_max.push_back(cell.err_total_max);
      total_rms.push_back(cell.err_total_rms);
    }
    f.dataset(g + "/err_total_max", {m}, total_max);
    f.dataset(g + "/err_total_rms", {m}, total_rms);
    f.attribute(g, "knee_nfe", static_cast<double>(s.knee_nfe));
  }
  f.attribute(g, "name", s.name);
  f.attribute(g, "index", static_cast<double>(si));  // position in the config
  f.attribute(g, "reference", s.reference);
  f.attribute(g, "declared_order", static_cast<double>(s.declared_order));
  f.attribute(g, "fitted_order", s.fit.order);
  f.attribute(g, "pairwise_orders", s.fit.pairwise);
  f.attribute(g, "failures", failures);
  kind.write_solver(f, g, s, r);
}

// /provenance/schedule: one row per work item this run computed (items read from a checkpoint
// have none), in the order they finished: its phase (0 reference, 1 analytic flow, 2 cells), item
// (chunk or cell index), rank, and start and end in seconds since the run began. The idle fraction
// of each rank and the load balance follow from it (scripts/schedule.py).
void write_schedule(h5::File& f, const ExperimentResult& r) {
  const std::vector<std::string> phases = {"reference", "analytic flow", "cells"};
  std::vector<long> phase, item, rank;
  std::vector<double> start, end;
  for (const cluster::TraceEntry& e : r.schedule) {
    phase.push_back(std::find(phases.begin(), phases.end(), e.phase) - phases.begin());
    item.push_back(static_cast<long>(e.item));
    rank.push_back(e.rank);
    start.push_back(e.start);
    end.push_back(e.end);
  }
  f.group("/provenance");
  f.group("/provenance/schedule");
  f.dataset("/provenance/schedule/phase", phase);
  f.dataset("/provenance/schedule/item", item);
  f.dataset("/provenance/schedule/rank", rank);
  f.dataset("/provenance/schedule/start_s", {start.size()}, start);
  f.dataset("/provenance/schedule/end_s", {end.size()}, end);
  f.attribute("/provenance/schedule", "phases",
              std::string("0 reference, 1 analytic flow, 2 cells"));
  f.attribute("/provenance/schedule", "ranks", static_cast<double>(r.ranks));
  f.attribute("/provenance/schedule", "threads", static_cast<double>(r.threads));
}

template <class Kind>
void write_cells(h5::File& f, const Kind& kind, const ExperimentResult& r) {
  const size_t n = static_cast<size_t>(r.particles), d = static_cast<size_t>(r.config.state_dim);
  f.group("/init");
  f.dataset("/init/x", {n, d}, r.init);
  kind.write_reference(f, r);
  if (!r.model_file.empty()) {
    f.attribute("/", "denoiser_file", r.model_file);
    f.attribute("/", "denoiser_sha256", r.model_sha256);
  }
  f.group("/solvers");
  for (size_t si = 0; si < r.solvers.size(); ++si) write_solver(f, kind, r, si);
  write_schedule(f, r);
}

// The bytes of the states a result holds (initial, reference, each cell's final states): most of
// its file.
std::size_t state_bytes(const ExperimentResult& r) {
  std::size_t values = r.init.size() + r.reference.size() + r.analytic_flow.size();
  for (const SolverRun& run : r.solvers)
    for (const CellResult& cell : run.cells) values += cell.x.size();
  return values * sizeof(double);
}

}  // namespace

void write_result(const ExperimentResult& r, const std::string& path) {
  require(r.cells_done == r.cells_total, "result", path,
          "is incomplete (" + std::to_string(r.cells_done) + " of " +
              std::to_string(r.cells_total) + " cells): resume the run to finish it");
#if defined(__GLIBC__)
  // The solves' freed work arrays stay in glibc's heap below live blocks, where they count as
  // resident memory while the file is built on top of them; give those pages back first (at
  // N = 1e6, d = 2 this is ~47 MB of a 165 MB peak).
  malloc_trim(0);
#endif
  write_atomically(path, state_bytes(r), [&](h5::File& f) {
    write_provenance(f, r.config.normalized.dump());
    with_kind(r.config.kind, [&](const auto& kind) {
      if constexpr (std::decay_t<decltype(kind)>::has_cells) {
        write_cells(f, kind, r);
      } else {
        kind.write_tables(f, r);
      }
    });
  });
}

std::string run_summary(const ExperimentResult& r, double seconds) {
  std::string out;
  with_kind(r.config.kind, [&](const auto& kind) {
    if constexpr (std::decay_t<decltype(kind)>::has_cells) {
      out = brief_report(r, seconds) + "\n" + result_table(r, "markdown", "") +
            "\nerrors: " + kind.error_note();
      if (kind.table_layout != TableLayout::samples && kind.table_layout != TableLayout::guidance)
        out += "; fitted order: least-squares slope over the last " +
               std::to_string(r.config.fit_levels) + " NFE levels";
      out += "\n";
    } else {
      out = kind.summary(r) + "\n";
    }
  });
  return out;
}

namespace {

double physical_memory() {
  return static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGE_SIZE));
}

// The config with `n` particles (the first n initial points, or init.count = n).
ExperimentConfig with_particles(ExperimentConfig c, long long n) {
  if (c.init_count > 0) {
    c.init_count = static_cast<int>(n);
    c.normalized["init"]["count"] = n;
  } else if (static_cast<long long>(c.init_points.size()) > n) {
    c.init_points.resize(static_cast<size_t>(n));
    c.normalized["init"]["points"] = c.init_points;
  }
  return c;
}

// One calibration run (one thread, no checkpoint, no progress): its wall time and result.
double timed_run(const ExperimentConfig& c, ExperimentResult* result = nullptr) {
  const auto start = std::chrono::steady_clock::now();
  ExperimentResult r = run_experiment(c, RunOptions{});
  if (result) *result = std::move(r);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The calibration's view of a run on n particles: the time outside the cells (set-up and the
// reference) and, per solver, the seconds per NFE of its cells (fixed-step: the first two NFE
// levels; adaptive: the loosest tolerance, per NFE it took).
struct CalibrationPoint {
  long long n = 0;
  double total = 0, outside = 0;
  std::vector<double> per_nfe;
  // Adaptive solvers: the NFE of their cells at the two loosest tolerances.
  std::vector<std::pair<double, double>> adaptive_nfe;
};

// The fixed cost of a run's data: building it (a generated covariance: a QR factorisation),
// under a scalar SDE the eigendecomposition of each dense covariance, and the factorisation
// behind sampled initial states. Timed once, apart, so that the calibration neither scales it
// with N nor takes it for a costly reference (vp_gaussian3072_dense: 13 s of set-up, 0.2 s per
// particle).
double data_setup_seconds(const ExperimentConfig& c) {
  const auto start = std::chrono::steady_clock::now();
  const auto data = DataSource<double>::from_config(c.target, "target");
  const auto sde = make_sde<double>(c.sde, c.data_dim, "sde");
  if (const auto* mixture = data.mixture();
      mixture && dynamic_cast<const ScalarSde<double>*>(sde.get()))
    for (int k = 0; k < mixture->components(); ++k)
      if (const auto* low_rank = mixture->low_rank(k); !(low_rank && low_rank->scaled_identity))
        mixture->spectrum(k);
  // Sampled initial states factorise the marginal covariance once (a Cholesky factor per
  // component: vp_ppca3072, 2.3 s of its 6.6 s); one sample pays for it.
  if (c.init_points.empty()) {
    Rng rng(c.init_seed);
    data.sample_marginal(*sde, c.t_start, 1, rng);
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// A calibration run on n particles with the data's fixed set-up (`setup` seconds) taken out.
CalibrationPoint calibrate_at(const ExperimentConfig& c, long long n, double setup) {
  ExperimentConfig small = with_particles(c, n);
  if (small.nfe.size() > 2) small.nfe.resize(2);
  if (small.tolerances.size() > 2) small.tolerances.resize(2);
  small.fit_levels = 2;
  ExperimentResult r;
  CalibrationPoint p;
  p.n = n;
  const double total = p.total = timed_run(small, &r);
  double cells = 0;
  for (const SolverRun& run : r.solvers) {
    double seconds = 0, nfe = 0;
    for (const CellResult& cell : run.cells) {
      seconds += cell.wall_s;
      nfe += static_cast<double>(run.adaptive ? std::max(1L, cell.nfe) : cell.nfe_target);
    }
    cells += seconds;
    p.per_nfe.push_back(seconds / std::max(1.0, nfe));
    p.adaptive_nfe.emplace_back(run.cells.empty() ? 0.0 : double(run.cells.front().nfe),
                                run.cells.empty() ? 0.0 : double(run.cells.back().nfe));
  }
  p.outside = std::max(0.0, total - cells - setup);
  p.total = std::max(0.0, total - setup);
  return p;
}

std::string megabytes(double bytes) {
  char text[32];
  std::snprintf(text, sizeof text, bytes < 1e8 ? "%.3g MB" : "%.0f MB", bytes / 1e6);
  return text;
}

std::string seconds_text(double s) {
  char text[32];
  std::snprintf(text, sizeof text, s < 10 ? "%.3g s" : "%.0f s", s);
  return text;
}

}  // namespace

RunPlan plan_run(const ExperimentConfig& c, int threads, bool calibrate) {
  RunPlan plan;
  plan.state_dim = c.state_dim;
  plan.particles = c.init_count > 0 ? c.init_count : static_cast<long long>(c.init_points.size());
  bool trajectory = false, has_cells = true;
  with_kind(c.kind, [&](const auto& kind) {
    has_cells = std::decay_t<decltype(kind)>::has_cells;
    trajectory = std::string(kind.name) == "trajectory";
  });
  double stored_arrays = 2;  // the initial states and the reference
  if (c.denoiser.value("type", "analytic") != "analytic") stored_arrays += 1;  // the data's flow
  for (const auto& spec : c.solvers) {
    const SolverInfo info = make_solver<double>(spec)->info();
    if (info.adaptive) {
      for (double tol : c.tolerances) plan.cells.push_back({info.label, 0, tol});
    } else {
      for (int nfe : c.nfe) {
        plan.cells.push_back({info.label, nfe, NAN});
        plan.nfe_per_particle += nfe;
        // kind trajectory keeps the solver's and the reference's state at every grid time
        if (trajectory) stored_arrays += 2.0 * (nfe / std::max(1, info.evals_per_step) + 1);
      }
    }
    stored_arrays += static_cast<double>(info.adaptive ? c.tolerances.size() : c.nfe.size());
  }
  // The memory model (README "Reliability"): the program itself; the states the result keeps
  // (doubles) and the in-memory HDF5 file built from them (the same bytes, 1/8 slack); while the
  // cells run, each running cell's work arrays (~6 arrays of states in the run's number type:
  // the state, model outputs, a multistep history); the data's covariances in double and mp50.
  const double states = static_cast<double>(plan.particles) * c.state_dim;
  const double scalar_bytes = c.precision == "mp50"       ? sizeof(mp50)
                              : c.precision == "float128" ? sizeof(f128)
                                                          : sizeof(double);
  const double components =
      c.target.contains("weights") ? static_cast<double>(c.target["weights"].size()) : 1.0;
  const double running = std::min<double>(threads, std::max<size_t>(1, plan.cells.size()));
  plan.memory_program = 25e6;
  plan.memory_states = has_cells ? stored_arrays * states * sizeof(double) : 0;
  plan.memory_file = 1.125 * plan.memory_states;
  plan.memory_work = has_cells ? running * 6 * states * scalar_bytes : 0;
  // An exact map in double keeps no 50-digit copies; its eigendecomposition (and a generated
  // covariance's orthogonal factor) takes ~4 more d x d arrays while it runs, and 2 per running
  // cell are allowed for (conservative: the spectral score forms no d x d matrix; measured at
  // d = 3072 on 2 threads: 700 MB against 833 MB estimated).
  const bool data_in_double = exact_reference_in_run_precision(c) &&
                              c.denoiser.value("type", std::string("analytic")) == "analytic";
  const double square = components * c.data_dim * c.data_dim;
  // A generated c I + low rank the run finds as such has no eigendecomposition and no d x d
  // array per cell: the matrix and, at most, the initial states' covariance, its products and
  // its Cholesky factor (vp_ppca3072: 632 MB measured against 692 MB estimated).
  plan.memory_data = data_in_double && generated_target_low_rank(c.target)
                         ? square * sizeof(double) * 6
                     : data_in_double ? square * sizeof(double) * (6 + 2 * running)
                                      : square * (4 * sizeof(double) + 2 * sizeof(mp50));
  plan.memory = plan.memory_program + plan.memory_data + plan.memory_states +
                std::max(plan.memory_file, plan.memory_work);
  if (!calibrate) return plan;
  // A run that does not fit is not calibrated either: the calibration builds the same data.
  if (const double memory = physical_memory(); memory > 0 && plan.memory > memory) {
    plan.calibration_note = "not estimated: the run does not fit this machine's memory";
    return plan;
  }
  try {
    if (!has_cells) {
      plan.seconds_one_thread = timed_run(c);
      plan.calibration_note = "the whole run, timed on one thread";
    } else {
      // The run cut to its first two NFE levels (or loosest tolerance) on 1 and 2 particles;
      // each part (outside the cells; each solver's seconds per NFE) is fitted as fixed + per
      // particle x N and scaled to the config's NFE levels.
      // (Kinds that need two initial points, interpolation, calibrate on 2 and 4.)
      long long n1 = 1, n2 = std::min<long long>(plan.particles, 2);
      const double setup = data_setup_seconds(c);
      const auto calibrate = [&](long long n) { return calibrate_at(c, n, setup); };
      CalibrationPoint p1;
      try {
        p1 = calibrate(n1);
      } catch (const InputError&) {
        n1 = n2, n2 = std::min<long long>(plan.particles, 4);
        p1 = calibrate(n1);
      }
      // A first run over 5 s (a reference that costs seconds per particle) is not repeated on
      // more particles: all of its time is taken as per particle, an upper bound.
      CalibrationPoint p2 = n2 > n1 && p1.total <= 5.0 ? calibrate(n2) : p1;
      // Cheap runs: more particles (x8) until a calibration run takes 0.2 s, so that the
      // per-particle cost stands out of the fixed one.
      while (p2.total < 0.2 && p2.n < plan.particles) {
        p1 = p2;
        p2 = calibrate(std::min<long long>(plan.particles, 8 * p2.n));
      }
      const auto at_n = [&](double y1, double y2) {
        if (p2.n == p1.n) return y1 * static_cast<double>(plan.particles) / double(p1.n);
        const double slope = std::max(0.0, (y2 - y1) / double(p2.n - p1.n));
        return std::max(0.0, y1 - slope * double(p1.n)) +
               slope * static_cast<double>(plan.particles);
      };
      double total = setup + at_n(p1.outside, p2.outside);
      for (size_t si = 0; si < c.solvers.size(); ++si) {
        const double per_nfe = at_n(p1.per_nfe[si], p2.per_nfe[si]);
        const SolverInfo info = make_solver<double>(c.solvers[si])->info();
        if (info.adaptive) {
          // NFE ~ tolerance^(-q), q from the two loosest tolerances' NFE
          const auto [nfe0, nfe1] = p1.adaptive_nfe[si];
          const double q = c.tolerances.size() > 1 && nfe0 > 0 && nfe1 > nfe0
                               ? std::log(nfe1 / nfe0) / std::log(c.tolerances[0] / c.tolerances[1])
                               : 0.0;
          for (double tol : c.tolerances)
            total += per_nfe * nfe0 * std::pow(c.tolerances.front() / tol, q);
        } else {
          for (int nfe : c.nfe) total += per_nfe * nfe;
        }
      }
      plan.seconds_one_thread = total;
      plan.calibration_note =
          "data set-up " + seconds_text(setup) + ", once; the first two NFE levels on " +
          (p1.n == p2.n ? std::to_string(p1.n) +
                              " particle(s), timed on one thread (outside the "
                              "cells " +
                              seconds_text(p1.outside)
                        : std::to_string(p1.n) + " and " + std::to_string(p2.n) +
                              " particles, timed on one thread (outside the cells " +
                              seconds_text(p1.outside) + ", " + seconds_text(p2.outside)) +
          "), scaled to every cell's NFE and to N";
    }
  } catch (const std::exception& e) {
    plan.calibration_note = std::string("not estimated: the calibration failed: ") + e.what();
  }
  return plan;
}

std::string format_plan(const ExperimentConfig& c, const RunPlan& plan, int threads) {
  std::ostringstream out;
  out << "plan of " << c.name << ": kind " << c.kind << ", " << plan.particles << " particles in "
      << plan.state_dim << " dimensions, precision " << c.precision << "\n";
  if (plan.cells.empty()) {
    out << "cells: none (a kind of tables)\n";
  } else {
    out << "cells: " << plan.cells.size() << "\n";
    std::string solver;
    for (const auto& cell : plan.cells) {
      if (cell.solver != solver) out << (solver.empty() ? "" : "\n") << "  " << cell.solver << ":";
      solver = cell.solver;
      if (std::isnan(cell.tolerance)) {
        out << " " << cell.nfe;
      } else {
        out << " tol " << to_text(cell.tolerance);
      }
    }
    out << "\ntotal NFE: " << plan.nfe_per_particle << " per particle, "
        << static_cast<double>(plan.nfe_per_particle) * static_cast<double>(plan.particles)
        << " model evaluations of one state (fixed-step cells; adaptive ones as their "
           "tolerance needs)\n";
  }
  out << "memory: ~" << megabytes(plan.memory) << " peak (program "
      << megabytes(plan.memory_program) << ", data " << megabytes(plan.memory_data)
      << ", stored states " << megabytes(plan.memory_states)
      << ", then the larger of the result file's buffer " << megabytes(plan.memory_file)
      << " and the running cells' work arrays " << megabytes(plan.memory_work)
      << "); this machine has " << megabytes(physical_memory()) << "\n";
  if (std::isnan(plan.seconds_one_thread)) {
    out << "time: " << plan.calibration_note << "\n";
  } else {
    out << "time: ~" << seconds_text(plan.seconds_one_thread) << " on one thread";
    if (threads > 1)
      out << ", ~" << seconds_text(plan.seconds_one_thread / threads) << " on " << threads
          << " threads if the work splits evenly";
    out << " (calibration: " << plan.calibration_note << ")\n";
  }
  return out.str();
}

void require_memory_fits(const ExperimentConfig& c, int threads) {
  const RunPlan plan = plan_run(c, threads, false);
  const double memory = physical_memory();
  require(memory <= 0 || plan.memory <= memory, "init.count", plan.particles,
          "the run needs an estimated " + megabytes(plan.memory) + " (stored states " +
              megabytes(plan.memory_states) + ", result file " + megabytes(plan.memory_file) +
              ", work arrays " + megabytes(plan.memory_work) + ", data " +
              megabytes(plan.memory_data) + "), more than this machine's " + megabytes(memory) +
              "; `pflow run --plan` prints the estimate");
}

}  // namespace pflow
