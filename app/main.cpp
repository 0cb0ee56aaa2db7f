// pflow: the command-line program.
//   pflow verify [--precision double|float128|mp50|both|all] [--sde NAME ...]
//   pflow list
//   pflow model MODEL.h5   (a learned denoiser's file: read, checked and described)
// Exit status: 0 success, 1 a check failed (verify, orders), 2 bad input, 3 an I/O error (a file
// could not be written or read: disk full, read-only location), 4 an internal or numerical
// error, 130 interrupted by a signal (the checkpoint is kept).
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <iostream>

#include "orders.hpp"
#include "pflow/core/allocator.hpp"
#include "pflow/core/errors.hpp"
#include "pflow/experiment/cluster.hpp"
#include "pflow/experiment/run.hpp"
#include "pflow/experiment/table.hpp"
#include "pflow/model/mlp_file.hpp"
#include "pflow/sampler/registry.hpp"
#include "pflow/sde/factory.hpp"
#include "pflow/verify/verify.hpp"
#include "pflow/version.hpp"

namespace {

pflow::ProgressCallback progress_printer(bool quiet);
void end_progress(bool quiet);

// `pflow model FILE`: the file read and checked as a run reads it, described, and its forward
// compared on the /check points with torch's (1e-12) and in 50 digits with double (1e-14).
int run_model(const std::string& path) {
  const pflow::MlpModel m = pflow::load_mlp_model(path);
  std::cout << pflow::describe_model(m);
  const pflow::ModelCheck c = pflow::check_model(m);
  if (c.points == 0) {
    std::cout << "no /check points: the forward cannot be compared with torch's\n";
    return 0;
  }
  const bool ok = c.torch_vs_double <= 1e-12 && c.mp50_vs_double <= 1e-14;
  std::cout << std::setprecision(3) << "forward on " << c.points
            << " check points, relative to the largest output: double vs torch float64 "
            << c.torch_vs_double << " (at most 1e-12), mp50 vs double " << c.mp50_vs_double
            << " (at most 1e-14): " << (ok ? "ok" : "FAILED") << "\n";
  return ok ? 0 : 1;
}

int run_verify(const std::string& precision, const std::vector<std::string>& sdes, bool quiet) {
  const auto known = pflow::verify_sde_names();
  for (const auto& name : sdes) {
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      const std::string hint = pflow::closest_name(name, known);
      throw pflow::InputError(
          "--sde", name, "unknown SDE" + (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
    }
  }
  const pflow::VerifyOptions options{sdes, progress_printer(quiet)};
  const auto start = std::chrono::steady_clock::now();
  std::vector<pflow::CheckRow> rows;
  // "both": double and mp50; "all" adds float128.
  if (precision == "double" || precision == "both" || precision == "all")
    rows = pflow::verify_double(options);
  if (precision == "float128" || precision == "all") {
    auto quad = pflow::verify_f128(options);
    rows.insert(rows.end(), quad.begin(), quad.end());
  }
  if (precision == "mp50" || precision == "both" || precision == "all") {
    auto mp = pflow::verify_mp50(options);
    rows.insert(rows.end(), mp.begin(), mp.end());
  }
  end_progress(quiet);
  std::cout << pflow::format_check_table(rows);
  int failed = 0;
  for (const auto& r : rows) failed += !r.pass();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "\n"
            << rows.size() - failed << " passed, " << failed << " failed (" << std::fixed
            << std::setprecision(1) << seconds << " s)\n";
  std::cout << "error = max |a - b| / max(1, max |b|) over the time grid, particles and entries\n";
  return failed == 0 ? 0 : 1;
}

struct RunArgs {
  std::string config, out;
  bool force = false, quiet = false, resume = false, plan = false;
  int threads = 1;
};

// SIGINT / SIGTERM: stop at the next cell boundary (the running cells finish and are
// checkpointed); a second signal kills at once.
std::atomic<bool> stop_requested{false};
extern "C" void request_stop(int signal_number) {
  stop_requested = true;
  std::signal(signal_number, SIG_DFL);
  if (!pflow::cluster::root()) return;  // (under MPI rank 0 stops the job and says so)
  const char message[] = "\npflow: stopping after the running cells (again to abort)\n";
  [[maybe_unused]] const auto ignored = write(STDERR_FILENO, message, sizeof message - 1);
}

// Progress on stderr, one line rewritten in place, unless --quiet or stderr is not a terminal.
pflow::ProgressCallback progress_printer(bool quiet) {
  if (quiet || !isatty(STDERR_FILENO)) return {};
  return [](const pflow::ProgressEvent& e) {
    std::cerr << "\r" << pflow::format_progress(e) << "\x1b[K" << std::flush;
  };
}
void end_progress(bool quiet) {
  if (!quiet && isatty(STDERR_FILENO)) std::cerr << "\r\x1b[K" << std::flush;
}

std::string shell_quote(const std::string& s) {
  if (s.find_first_of(" '\"$`\\") == std::string::npos) return s;
  std::string out = "'";
  for (char ch : s) out += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return out + "'";
}

// Under mpirun or srun every rank runs this with the same arguments: the config is read and
// checked by each (the same input gives the same error everywhere), the files are checked and
// written by rank 0 alone, and only rank 0 prints (README "Many machines: MPI").
int run_experiment(const RunArgs& a) {
  namespace fs = std::filesystem;
  // Everything is validated before any work, and an existing result is never overwritten
  // without --force (or --resume of a run that was writing it).
  const pflow::ExperimentConfig config = pflow::load_experiment(a.config);
  pflow::require(a.threads >= 1 && a.threads <= 256, "--threads", a.threads,
                 "must be between 1 and 256");
  if (a.plan) {  // what the run would do and need; nothing is written
    if (pflow::cluster::root())
      std::cout << pflow::format_plan(config, pflow::plan_run(config, a.threads, true), a.threads);
    return 0;
  }
  const std::string out =
      a.out.empty() ? "results/" + config.name + "/" + config.name + ".h5" : a.out;
  const std::string checkpoint = out + ".checkpoint";
  const auto start = std::chrono::steady_clock::now();
  pflow::cluster::on_root([&] {
    const bool has_checkpoint = fs::exists(checkpoint);
    if (has_checkpoint && !a.resume && !a.force)
      throw pflow::InputError("--out", out,
                              "has the checkpoint of an interrupted run (" + checkpoint +
                                  "): pass --resume to continue it, or --force to start over");
    if (fs::exists(out) && !a.force && !(a.resume && has_checkpoint))
      throw pflow::InputError("--out", out, "exists; pass --force to overwrite it");
    if (has_checkpoint && !a.resume) fs::remove_all(checkpoint);  // --force: start over
  });
  pflow::RunOptions options;
  options.distributed = pflow::cluster::size() > 1;
  options.threads = a.threads;
  options.checkpoint_dir = checkpoint;
  options.resume = a.resume;
  options.stop = &stop_requested;
  std::signal(SIGINT, request_stop);
  std::signal(SIGTERM, request_stop);
  const bool quiet = a.quiet || !pflow::cluster::root();
  options.progress = progress_printer(quiet);
  const pflow::ExperimentResult result = pflow::run_experiment(config, options);
  end_progress(quiet);
  if (!pflow::cluster::root()) return 0;  // rank 0 holds the result and writes it
  if (result.cells_done < result.cells_total) {
    std::cerr << "pflow: interrupted: " << result.cells_done << " of " << result.cells_total
              << " cells done, kept in " << checkpoint << "\ncontinue with: pflow run "
              << shell_quote(a.config) << " --out " << shell_quote(out) << " --resume\n";
    return 130;
  }
  try {
    pflow::write_result(result, out);
  } catch (const pflow::IoError& e) {
    if (result.cells_total == 0) throw;  // a kernel table: no checkpoint, run it again
    throw pflow::IoError(e.what(), "every cell is kept in " + checkpoint +
                                       "; once the file can be written, continue with: pflow run " +
                                       shell_quote(a.config) + " --out " + shell_quote(out) +
                                       " --resume");
  }
  fs::remove_all(checkpoint);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << pflow::run_summary(result, seconds) << "written to " << out << "\n";
  int failed = 0;
  for (const auto& s : result.solvers)
    for (const auto& c : s.cells) failed += c.failed;
  if (failed) std::cout << failed << " cells failed (see the 'failures' attributes)\n";
  return 0;
}

void run_list() {
  std::cout << "SDEs (sde.type):\n";
  for (const auto& info : pflow::sde_catalogue())
    std::cout << "  " << info.name << "\n      parameters: " << info.parameters
              << "\n      reference:  " << info.reference << "\n";
  std::cout << "Targets (target.type):\n"
            << "  dirac     {point}\n"
            << "  gaussian  {mean, cov}\n"
            << "  gmm       {weights, means, covs | diag_covs}\n";
  std::cout << "Solvers (a name, or {\"name\": ..., parameters}):\n";
  for (const auto& s : pflow::solver_table<double>()) {
    // The declared order at the default parameters, with the record's note on what it depends on.
    const auto defaults = pflow::make_solver<double>(nlohmann::json(s.name))->info();
    std::cout << "  " << s.name << "  [" << s.family << "]  order "
              << (defaults.adaptive ? std::string("adaptive") : std::to_string(defaults.order))
              << (defaults.stochastic && defaults.weak_order
                      ? " (strong), weak " + std::to_string(defaults.weak_order)
                      : std::string())
              << (s.order_note.empty() ? "" : " " + s.order_note) << "\n";
    if (!s.parameters.empty())
      std::cout << "      parameters: " << pflow::describe_parameters(s) << "\n";
    std::cout << "      reference:  " << s.reference << "\n";
  }
  std::cout << "Time grids (time.grid): time-uniform, time-quadratic, logsnr, edm (rho = 7), list, "
               "discrete-uniform, discrete-quadratic (vp-discrete steps)\n";
}

// Runs a subcommand and maps what it throws to the exit statuses of the header comment, with one
// line on stderr (under MPI from rank 0 alone: the other ranks fail with the same status
// silently).
template <class F>
int with_exit_status(F&& subcommand) {
  try {
    return subcommand();
  } catch (const pflow::cluster::RankFailure& e) {
    return e.status;
  } catch (...) {
    const pflow::FailureReport report = pflow::report_failure(std::current_exception());
    if (pflow::cluster::root()) std::cerr << report.line << "\n";
    return report.status;
  }
}

// The program's work (main adds MPI's start and end around it).
int run_main(int argc, char** argv) {
  pflow::tune_allocator();
  CLI::App app{"pflow: exact solutions and samplers for linear-SDE diffusion models"};
  app.set_version_flag("--version", std::string("pflow ") + PFLOW_VERSION);
  app.require_subcommand(1);

  auto* verify = app.add_subcommand("verify", "check every exact formula for every SDE");
  std::string precision = "both";
  std::vector<std::string> sdes;
  verify
      ->add_option("--precision", precision,
                   "double, float128, mp50, both (double and mp50) or all three")
      ->check(CLI::IsMember({"double", "float128", "mp50", "both", "all"}))
      ->capture_default_str();
  verify->add_option("--sde", sdes, "only these SDEs (repeatable)");
  bool verify_quiet = false;
  verify->add_flag("--quiet", verify_quiet, "no progress on stderr");

  auto* list = app.add_subcommand("list", "list SDEs, targets and solvers");

  auto* model = app.add_subcommand("model", "read, check and describe a learned model file");
  std::string model_file;
  model->add_option("file", model_file, "the model file (format 1, HDF5)")->required();

  auto* run = app.add_subcommand("run", "run an experiment config and write its HDF5 result");
  RunArgs run_args;
  run->add_option("config", run_args.config, "the experiment's JSON file")->required();
  run->add_option("--out", run_args.out, "result file (default results/<name>/<name>.h5)");
  run->add_flag("--force", run_args.force, "overwrite an existing result file");
  run->add_option("--threads", run_args.threads, "worker threads (results do not depend on it)")
      ->capture_default_str();
  run->add_flag("--quiet", run_args.quiet, "no progress on stderr");
  run->add_flag("--resume", run_args.resume,
                "continue an interrupted run from its checkpoint (<out>.checkpoint)");
  run->add_flag("--plan", run_args.plan,
                "print the cells, total NFE, estimated peak memory and time (from a short "
                "calibration on 1 and 2 particles) and exit; nothing is written");

  auto* table = app.add_subcommand("table", "print a result file as a table");
  std::string table_file, table_format = "markdown", table_metric;
  table->add_option("result", table_file, "the HDF5 result file")->required();
  table->add_option("--format", table_format, "markdown, latex or csv")
      ->check(CLI::IsMember({"markdown", "latex", "csv"}))
      ->capture_default_str();
  table
      ->add_option("--metric", table_metric,
                   "err_max (default), err_rms or wall_s; err_total_max or err_total_rms "
                   "(learned models); sw2 (default) or mean_log_p0 (kind sample); roundtrip_max or "
                   "roundtrip_rms (kind inversion); switch_error (kind interpolation)")
      ->check(
          CLI::IsMember({"err_max", "err_rms", "wall_s", "err_total_max", "err_total_rms", "sw2",
                         "mean_log_p0", "roundtrip_max", "roundtrip_rms", "switch_error"}));

  auto* orders = app.add_subcommand("orders", "measure every solver's convergence order");
  pflow_app::OrdersOptions orders_options;
  orders->add_option("--problem", orders_options.problems, "gaussian, mixture, cld (repeatable)")
      ->capture_default_str();
  orders->add_option("--solver", orders_options.solvers,
                     "a solver name or JSON spec (repeatable; default: all that apply)");
  orders->add_option("--precision", orders_options.precision, "double, float128 or mp50")
      ->check(CLI::IsMember({"double", "float128", "mp50"}))
      ->capture_default_str();
  orders->add_option("--steps", orders_options.steps, "the ladder of step counts")
      ->capture_default_str();
  orders
      ->add_option("--start", orders_options.start,
                   "start of the multistep solvers of the standard list (default: exact)")
      ->check(CLI::IsMember({"lower-order", "singlestep", "exact"}));
  orders->add_flag("--encode", orders_options.encode,
                   "encoding: data -> noise on the reversed grid, against the flow's preimage");
  orders->add_flag("--details", orders_options.details, "print every level");
  bool orders_quiet = false;
  orders->add_flag("--quiet", orders_quiet, "no progress on stderr");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  return with_exit_status([&] {
    if (*verify) return run_verify(precision, sdes, verify_quiet);
    if (*orders) {
      orders_options.progress = progress_printer(orders_quiet);
      const int status = pflow_app::run_orders(orders_options);
      end_progress(orders_quiet);
      return status;
    }
    if (*run) return run_experiment(run_args);
    if (*model) return run_model(model_file);
    if (*table) {
      std::cout << pflow::result_table(table_file, table_format, table_metric);
      return 0;
    }
    if (*list) run_list();
    return 0;
  });
}

}  // namespace

int main(int argc, char** argv) {
  pflow::cluster::start(argc, argv);  // MPI, when started by mpirun or srun
  const int status = run_main(argc, argv);
  pflow::cluster::stop();
  return status;
}
