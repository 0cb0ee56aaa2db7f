// pflow: the command-line program.
//   pflow verify [--precision double|mp50|both] [--sde NAME ...]
//   pflow list
// Exit status: 0 success, 1 a check failed, 2 bad input.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>

#include "orders.hpp"
#include "pflow/core/errors.hpp"
#include "pflow/sampler/registry.hpp"
#include "pflow/sde/factory.hpp"
#include "pflow/verify/verify.hpp"

namespace {

int run_verify(const std::string& precision, const std::vector<std::string>& sdes) {
  const auto known = pflow::verify_sde_names();
  for (const auto& name : sdes) {
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      const std::string hint = pflow::closest_name(name, known);
      throw pflow::InputError(
          "--sde", name, "unknown SDE" + (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
    }
  }
  const pflow::VerifyOptions options{sdes};
  const auto start = std::chrono::steady_clock::now();
  std::vector<pflow::CheckRow> rows;
  if (precision != "mp50") rows = pflow::verify_double(options);
  if (precision != "double") {
    auto mp = pflow::verify_mp50(options);
    rows.insert(rows.end(), mp.begin(), mp.end());
  }
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
  for (const auto& s : pflow::solver_catalogue()) {
    std::cout << "  " << s.name << "  [" << s.family << "]  order " << s.order << "\n";
    if (!s.parameters.empty()) std::cout << "      parameters: " << s.parameters << "\n";
    std::cout << "      reference:  " << s.reference << "\n";
  }
  std::cout
      << "Time grids (time.grid): time-uniform, time-quadratic, logsnr, edm (rho = 7), list\n";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pflow: exact solutions and samplers for linear-SDE diffusion models"};
  app.set_version_flag("--version", std::string("pflow ") + PFLOW_VERSION);
  app.require_subcommand(1);

  auto* verify = app.add_subcommand("verify", "check every exact formula for every SDE");
  std::string precision = "both";
  std::vector<std::string> sdes;
  verify->add_option("--precision", precision, "double, mp50 or both")
      ->check(CLI::IsMember({"double", "mp50", "both"}))
      ->capture_default_str();
  verify->add_option("--sde", sdes, "only these SDEs (repeatable)");

  auto* list = app.add_subcommand("list", "list SDEs, targets and solvers");

  auto* orders = app.add_subcommand("orders", "measure every solver's convergence order");
  pflow_app::OrdersOptions orders_options;
  orders->add_option("--problem", orders_options.problems, "gaussian, mixture, cld (repeatable)")
      ->capture_default_str();
  orders->add_option("--solver", orders_options.solvers,
                     "a solver name or JSON spec (repeatable; default: all that apply)");
  orders->add_option("--precision", orders_options.precision, "double or mp50")
      ->check(CLI::IsMember({"double", "mp50"}))
      ->capture_default_str();
  orders->add_option("--steps", orders_options.steps, "the ladder of step counts")
      ->capture_default_str();
  orders
      ->add_option("--start", orders_options.start,
                   "start of the multistep solvers of the standard list (default: exact)")
      ->check(CLI::IsMember({"lower-order", "singlestep", "exact"}));
  orders->add_flag("--details", orders_options.details, "print every level");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  try {
    if (*verify) return run_verify(precision, sdes);
    if (*orders) return pflow_app::run_orders(orders_options);
    if (*list) run_list();
    return 0;
  } catch (const pflow::InputError& e) {
    std::cerr << "pflow: error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "pflow: failure: " << e.what() << "\n";
    return 1;
  }
}
