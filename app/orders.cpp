#include "orders.hpp"

#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>

#include "pflow/core/errors.hpp"
#include "pflow/core/json_fields.hpp"
#include "pflow/sampler/convergence.hpp"
#include "pflow/sampler/registry.hpp"

namespace pflow_app {

namespace {

struct Row {
  std::string label;
  std::map<std::string, int> declared;  // per problem: it may depend on the SDE
  std::map<std::string, pflow::OrderFit> fits;
  std::map<std::string, std::vector<pflow::Level>> levels;
};

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// The largest error over a ladder (+inf when a level failed).
double worst_error(const std::vector<pflow::Level>& levels) {
  double worst = 0;
  for (const auto& l : levels) worst = l.failed ? 1e300 : std::max(worst, l.err_max);
  return worst;
}

// A method exact on a problem: every level below 1e-12 (it has no order there).
bool exact_on(const std::vector<pflow::Level>& levels) {
  return worst_error(levels) <= 1e-12;
}

// One row per solver, one column per problem: the fitted order, "exact" when every level is
// below 1e-12, "at round-off" or "failed" when no order can be fitted.
void print_table(const std::vector<Row>& rows, const std::vector<std::string>& problems) {
  std::cout << "| solver | declared order |";
  for (const auto& p : problems) std::cout << " " << p << " |";
  std::cout << "\n|---|---|";
  for (size_t i = 0; i < problems.size(); ++i) std::cout << "---|";
  std::cout << "\n";
  for (const Row& row : rows) {
    std::string declared;  // the distinct declared orders over the problems, "a / b"
    for (const auto& p : problems)
      if (row.declared.count(p)) {
        const std::string d = std::to_string(row.declared.at(p));
        if (declared.find(d) == std::string::npos) declared += (declared.empty() ? "" : " / ") + d;
      }
    std::cout << "| " << row.label << " | " << declared << " |";
    for (const auto& p : problems) {
      const auto it = row.fits.find(p);
      if (it == row.fits.end()) {
        std::cout << " n/a |";
        continue;
      }
      const auto& lv = row.levels.at(p);
      if (exact_on(lv)) {
        std::cout << " exact (" << fmt("%.0e", worst_error(lv)) << ") |";
      } else if (std::isnan(it->second.order)) {
        const bool failed = !lv.empty() && lv.back().failed;
        std::cout << (failed ? " failed |" : " at round-off |");
      } else {
        std::cout << " " << fmt("%.2f", it->second.order) << " |";
      }
    }
    std::cout << "\n";
  }
}

// Every level of every solver on every problem, with the pairwise orders and the fitted range.
void print_details(const std::vector<Row>& rows) {
  for (const Row& row : rows)
    for (const auto& [p, lv] : row.levels) {
      std::cout << "\n" << row.label << " on " << p << ":\n";
      const auto& fit = row.fits.at(p);
      for (size_t i = 0; i < lv.size(); ++i) {
        std::cout << "  steps " << lv[i].steps << "  nfe " << lv[i].nfe << "  err_max "
                  << fmt("%.3e", lv[i].err_max) << "  err_rms " << fmt("%.3e", lv[i].err_rms);
        if (i > 0 && i - 1 < fit.pairwise.size())
          std::cout << "  pairwise " << fmt("%.2f", fit.pairwise[i - 1]);
        if (static_cast<int>(i) >= fit.first && static_cast<int>(i) <= fit.last)
          std::cout << "  (fitted)";
        if (lv[i].failed) std::cout << "  FAILED: " << lv[i].failure;
        std::cout << "\n";
      }
    }
}

// The solver-problem pairs whose fitted order is more than 0.2 below the declared one, or that
// failed; printed, and counted for the exit status (1 when any).
int below_declared(const std::vector<Row>& rows) {
  int count = 0;
  for (const Row& row : rows)
    for (const auto& [p, fit] : row.fits) {
      const bool failed = !row.levels.at(p).empty() && row.levels.at(p).back().failed;
      if (exact_on(row.levels.at(p))) continue;
      if (failed || (!std::isnan(fit.order) && fit.order < row.declared.at(p) - 0.2)) {
        std::cout << (count++ ? "" : "\n") << "below its declared order: " << row.label << " on "
                  << p << (failed ? " (failed)" : " (" + fmt("%.2f", fit.order) + ")") << "\n";
      }
    }
  return count;
}

template <class Scalar>
int run(const OrdersOptions& o) {
  std::vector<Row> rows;
  std::map<std::string, size_t> index;
  std::unique_ptr<pflow::ProgressStage> stage;
  for (const auto& problem_name : o.problems) {
    const pflow::OrderProblem<Scalar>& problem = pflow::order_problem<Scalar>(problem_name);
    std::vector<nlohmann::json> specs;
    if (o.solvers.empty()) {
      for (const pflow::OrderTest& test : pflow::order_tests_on(problem_name))
        specs.push_back(test.spec);
      if (specs.empty())
        throw pflow::InputError("--problem", problem_name,
                                "has no standard solver list: name the solvers with --solver");
      if (!o.start.empty())
        for (auto& spec : specs)
          if (spec.is_object() && spec.contains("start")) spec["start"] = o.start;
    } else {
      for (const auto& s : o.solvers) {
        const auto parsed = pflow::parse_json_text(s, "--solver", s);
        specs.push_back(parsed.is_discarded() ? nlohmann::json(s) : parsed);
      }
    }
    const auto direction = o.encode ? pflow::Direction::encode : pflow::Direction::decode;
    const double floor = pflow::roundoff_floor(problem, direction);
    stage = std::make_unique<pflow::ProgressStage>(o.progress, "orders on " + problem_name,
                                                   specs.size());
    for (const auto& spec : specs) {
      const auto solver = pflow::make_solver<Scalar>(spec);
      const std::string& label = solver->info().label;
      if (!index.count(label)) {
        index[label] = rows.size();
        rows.push_back({label, {}, {}, {}});
      }
      Row& row = rows[index[label]];
      row.declared[problem_name] =
          pflow::declared_order(spec, problem.sde->covariance(problem.t_end).block_size());
      row.levels[problem_name] =
          pflow::convergence_levels<Scalar>(spec, problem, o.steps, direction);
      row.fits[problem_name] = pflow::fit_order(row.levels[problem_name], floor);
      stage->done(label + ": " + std::to_string(o.steps.size()) + " levels");
    }
  }
  if (o.progress) std::cerr << "\r\x1b[K" << std::flush;  // the progress line gives way
  print_table(rows, o.problems);
  if (o.details) print_details(rows);
  return below_declared(rows) == 0 ? 0 : 1;
}

}  // namespace

int run_orders(const OrdersOptions& options) {
  if (options.precision == "mp50") return run<pflow::mp50>(options);
  if (options.precision == "float128") return run<pflow::f128>(options);
  return run<double>(options);
}

}  // namespace pflow_app
