#include "orders.hpp"

#include <cstdio>
#include <iostream>
#include <map>
#include <memory>

#include "pflow/sampler/convergence.hpp"
#include "pflow/sampler/registry.hpp"

namespace pflow_app {

namespace {

struct Row {
  std::string label;
  int declared = 0;
  std::map<std::string, pflow::OrderFit> fits;
  std::map<std::string, std::vector<pflow::Level>> levels;
};

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
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
    std::cout << "| " << row.label << " | " << row.declared << " |";
    for (const auto& p : problems) {
      const auto it = row.fits.find(p);
      if (it == row.fits.end()) {
        std::cout << " n/a |";
        continue;
      }
      const auto& lv = row.levels.at(p);
      double worst = 0;
      for (const auto& l : lv) worst = l.failed ? 1e300 : std::max(worst, l.err_max);
      if (worst <= 1e-12) {
        std::cout << " exact (" << fmt("%.0e", worst) << ") |";
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
      if (!o.start.empty())
        for (auto& spec : specs)
          if (spec.is_object() && spec.contains("start")) spec["start"] = o.start;
    } else {
      for (const auto& s : o.solvers) {
        const auto parsed = nlohmann::json::parse(s, nullptr, false);
        specs.push_back(parsed.is_discarded() ? nlohmann::json(s) : parsed);
      }
    }
    const double floor = pflow::roundoff_floor(problem);
    stage = std::make_unique<pflow::ProgressStage>(o.progress, "orders on " + problem_name,
                                                   specs.size());
    for (const auto& spec : specs) {
      const auto solver = pflow::make_solver<Scalar>(spec);
      const std::string& label = solver->info().label;
      if (!index.count(label)) {
        index[label] = rows.size();
        rows.push_back(
            {label,
             pflow::declared_order(spec, problem.sde->covariance(problem.t_end).block_size()),
             {},
             {}});
      }
      Row& row = rows[index[label]];
      row.levels[problem_name] = pflow::convergence_levels<Scalar>(spec, problem, o.steps);
      row.fits[problem_name] = pflow::fit_order(row.levels[problem_name], floor);
      stage->done(label + ": " + std::to_string(o.steps.size()) + " levels");
    }
  }
  if (o.progress) std::cerr << "\r\x1b[K" << std::flush;  // the progress line gives way
  print_table(rows, o.problems);
  if (o.details) print_details(rows);
  return 0;
}

}  // namespace

int run_orders(const OrdersOptions& options) {
  if (options.precision == "mp50") return run<pflow::mp50>(options);
  return run<double>(options);
}

}  // namespace pflow_app
