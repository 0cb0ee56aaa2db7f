// Every deterministic solver is held to its declared order (docs/NOTES.md sec. 7; docs/NOTES.md
// sec. 9): on Gaussian data against the exact flow map, and on a 3-component 2-D mixture against
// the 50-digit Bulirsch-Stoer reference. The fitted order must be within 0.2 of the declared one,
// or above it.
#include <thread>

#include "helpers.hpp"
#include "pflow/sampler/convergence.hpp"

using namespace pflow;
using json = nlohmann::json;

namespace {

const std::vector<int> ladder = {8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096};

// Every order test of the registry on `problem_name`: sampling (decode), or encoding on the
// reversed grid from the reference states back to x_start (encode).
void check_orders(const std::string& problem_name, Direction direction = Direction::decode,
                  const std::vector<int>& steps = ladder) {
  const OrderProblem<double>& p = order_problem<double>(problem_name);
  const double floor = roundoff_floor(p, direction);
  const int block_size = p.sde->covariance(p.t_end).block_size();
  for (const OrderTest& test : order_tests_on(problem_name)) {
    const auto solver = make_solver<double>(test.spec);
    const SolverInfo& info = solver->info();
    const int declared = declared_order(test.spec, block_size);
    // (Catch2 re-enters the test case once per section: the work lives inside the section.)
    DYNAMIC_SECTION(info.label << " on " << problem_name) {
      const auto levels = convergence_levels<double>(test.spec, p, steps, direction);
      const OrderFit fit = fit_order(levels, floor);
      for (const auto& l : levels) {
        INFO("steps " << l.steps << " err_max " << l.err_max << " " << l.failure);
        REQUIRE_FALSE(l.failed);
      }
      const auto& exact = test.exact_on;
      if (std::find(exact.begin(), exact.end(), problem_name) != exact.end()) {
        for (const auto& l : levels) CHECK(l.err_max <= 1e-12);
        continue;
      }
      INFO("fitted order " << fit.order << " over levels " << fit.first << ".." << fit.last
                           << ", declared " << declared);
      REQUIRE(fit.last - fit.first >= 2);  // at least three levels in the asymptotic range
      CHECK(fit.order >= declared - 0.2);
      CHECK(fit.order <= test.order_at_most);
    }
  }
}

}  // namespace

TEST_CASE("orders on Gaussian data (exact flow map reference)", "[orders]") {
  check_orders("gaussian");
}

// Rectified flow (alpha = 1 - t, sigma = t) with Gaussian data: its exact flow map.
TEST_CASE("orders on rectified flow (exact flow map reference)", "[orders]") {
  check_orders("rectified-flow");
}

// The double-precision solvers' orders against a 50-digit reference: Release only (the
// Gaussian case above runs every solver's code under the sanitizers).
TEST_CASE("orders on a 3-component 2-D mixture (50-digit reference)", "[orders][mp50-long]") {
  check_orders("mixture");
}

// Encoding (data -> noise, the reversed grid): every deterministic solver keeps its order.
TEST_CASE("encoding orders on Gaussian data (exact flow map reference)", "[orders][inversion]") {
  check_orders("gaussian", Direction::encode);
}

TEST_CASE("encoding orders on a 3-component 2-D mixture (50-digit reference)",
          "[orders][inversion][mp50-long]") {
  check_orders("mixture", Direction::encode);
}

// (Up to 2048 steps: the R-ODE factors of gddim at 4096 steps cost a minute; at 2048, 30 s:
// Release only, with the long tests.)
TEST_CASE("encoding orders on CLD (R-ODE exact flow map reference)",
          "[orders][inversion][mp50-long]") {
  check_orders("cld", Direction::encode, {16, 32, 64, 128, 256, 512, 1024, 2048});
}

TEST_CASE("orders in 50 digits: three methods below 1e-20 with their order intact",
          "[orders][mp50]") {
  const OrderProblem<mp50>& p = order_problem<mp50>("gaussian-short");
  const double floor = roundoff_floor(p);
  const std::vector<std::pair<json, std::vector<int>>> runs = {
      {"rkf78", {32, 64, 128, 256}},
      {"dopri5", {512, 1024, 2048, 4096}},
      {"cash-karp54", {512, 1024, 2048, 4096}},
  };
  for (const auto& [spec, steps] : runs) {
    const auto levels = convergence_levels<mp50>(spec, p, steps);
    const OrderFit fit = fit_order(levels, floor);
    const int declared = make_solver<mp50>(spec)->info().order;
    INFO(spec.dump() << ": order " << fit.order << ", smallest error " << levels.back().err_max);
    CHECK(levels.back().err_max < 1e-20);
    CHECK(fit.order == Approx(declared).margin(0.2));
  }
}

// float128: one method per family reaches its declared order; rkf78 reaches errors that double
// cannot (1.8e-24), the reference being mp50's rounded to 34 digits. Bounds: ~3x the measured
// error at the finest level.
TEST_CASE("orders in float128: a method per family with its order intact", "[orders][float128]") {
  const OrderProblem<f128>& p = order_problem<f128>("gaussian-short");
  const double floor = roundoff_floor(p);
  struct Run {
    json spec;
    std::vector<int> steps;
    double bound;
  };
  const std::vector<Run> runs = {
      {"rkf78", {32, 64, 128, 256}, 6e-24},
      {"rk4", {512, 1024, 2048, 4096}, 3e-16},
      {{{"name", "unipc"}, {"variant", "bh2"}, {"order", 3}, {"start", "exact"}},
       {256, 512, 1024, 2048},
       6e-13},
      {{{"name", "dpm-solver++-3m-corrected"}, {"start", "exact"}}, {256, 512, 1024, 2048}, 4e-10},
      {"dpm-solver-3", {256, 512, 1024, 2048}, 1e-11},
  };
  for (const Run& run : runs) {
    const auto levels = convergence_levels<f128>(run.spec, p, run.steps);
    const OrderFit fit = fit_order(levels, floor);
    const int declared = make_solver<f128>(run.spec)->info().order;
    INFO(run.spec.dump() << ": order " << fit.order << ", smallest error "
                         << levels.back().err_max);
    CHECK(levels.back().err_max < run.bound);
    CHECK(fit.order == Approx(declared).margin(0.2));
  }
}

// Every solver that accepts "adaptive": true (its record's check admits it).
std::vector<std::string> adaptive_solvers() {
  std::vector<std::string> names;
  for (const auto& record : solver_table<double>()) {
    try {
      if (make_solver<double>(json{{"name", record.name}, {"adaptive", true}})->info().adaptive)
        names.push_back(record.name);
    } catch (const InputError&) {
    }
  }
  return names;
}

TEST_CASE("adaptive odeint solvers meet their tolerance", "[orders]") {
  const OrderProblem<double>& p = order_problem<double>("mixture");
  const auto names = adaptive_solvers();
  CHECK(names == std::vector<std::string>{"cash-karp54", "dopri5", "rkf78", "bulirsch-stoer"});
  for (const std::string& name : names) {
    double previous = 1;
    for (double tol : {1e-6, 1e-9, 1e-12}) {
      const json spec = {{"name", name}, {"adaptive", true}, {"tolerance", tol}};
      const auto levels = convergence_levels<double>(spec, p, {1});
      INFO(name << " at tolerance " << tol << ": error " << levels[0].err_max << ", nfe "
                << levels[0].nfe);
      REQUIRE_FALSE(levels[0].failed);
      CHECK(levels[0].err_max < 300 * tol);  // global error: a few hundred local tolerances
      CHECK(levels[0].err_max < previous);
      previous = levels[0].err_max;
    }
  }
}

// The registry walk: every solver's record is complete and consistent, every deterministic
// solver is order-tested on the Gaussian and mixture problems (by the two test cases above,
// which read the same records), and every other one is exempt with a reason.
TEST_CASE("registry walk: every solver is order-tested or exempt, its order as built",
          "[orders][registry]") {
  const auto problems = order_problem_names();
  const auto& table = solver_table<double>();
  REQUIRE(table.size() == solver_table<mp50>().size());
  std::vector<std::string> names;
  for (size_t i = 0; i < table.size(); ++i) {
    const SolverRecord<double>& record = table[i];
    INFO("solver " << record.name);
    CHECK(std::find(names.begin(), names.end(), record.name) == names.end());  // unique
    names.push_back(record.name);
    CHECK(solver_table<mp50>()[i].name == record.name);
    CHECK_FALSE(record.reference.empty());
    CHECK_FALSE(record.family.empty());
    // Exactly one of: order tests, or an exemption with its reason.
    CHECK(record.order_tests.empty() != record.order_test_exempt.empty());
    const SolverInfo defaults = make_solver<double>(json(record.name))->info();
    if (record.order_tests.empty()) {
      // Exempt: stochastic (strong and weak orders in the [stochastic] test) or adaptive only.
      CHECK((defaults.stochastic || defaults.adaptive));
      continue;
    }
    std::vector<std::string> covered;
    for (const OrderTest& test : record.order_tests) {
      INFO("order test " << test.spec.dump());
      const auto built = make_solver<double>(test.spec);
      const auto built50 = make_solver<mp50>(test.spec);
      CHECK(built->info().name == record.name);
      CHECK_FALSE(built->info().stochastic);
      CHECK_FALSE(built->info().adaptive);
      // The recorded order is the built solver's, in both number types and on scalar SDEs.
      const json object = test.spec.is_string() ? json{{"name", test.spec}} : test.spec;
      const int recorded = record.traits(read_solver_params(record, object, "solver")).order;
      CHECK(recorded >= 1);
      CHECK(built->info().order == recorded);
      CHECK(built50->info().order == recorded);
      CHECK(declared_order(test.spec, 1) == recorded);
      for (const auto& problem : test.problems) {
        CHECK(std::find(problems.begin(), problems.end(), problem) != problems.end());
        covered.push_back(problem);
      }
    }
    for (const char* problem : {"gaussian", "mixture"})
      CHECK(std::find(covered.begin(), covered.end(), problem) != covered.end());
  }
  CHECK(names == solver_names());
  CHECK(table.size() == 31);
}

// Every parameter of every record is validated from its declaration: the default is accepted,
// a value outside its range or choices is refused with an error naming the JSON path.
TEST_CASE("registry walk: every parameter's range and choices are enforced", "[registry]") {
  for (const auto& record : solver_table<double>()) {
    INFO("solver " << record.name);
    CHECK_THROWS_WITH(make_solver<double>(json{{"name", record.name}, {"no-such-key", 1}}),
                      Catch::Contains("solver.no-such-key"));
    for (const ParameterSpec& p : record.parameters) {
      INFO("parameter " << p.key);
      json spec = {{"name", record.name}, {p.key, p.fallback}};
      CHECK_NOTHROW(make_solver<double>(spec));
      std::vector<json> bad = {json::array()};
      if (p.type == ParameterSpec::Type::integer) bad = {p.hi + 1, p.lo - 1, 1.5};
      if (p.type == ParameterSpec::Type::number) bad = {p.open ? p.hi : p.hi + 1, -1e300};
      if (p.type == ParameterSpec::Type::text) bad = {"no-such-choice", 3};
      if (p.type == ParameterSpec::Type::boolean) bad = {"yes"};
      for (const json& value : bad) {
        spec[p.key] = value;
        CHECK_THROWS_WITH(make_solver<double>(spec), Catch::Contains("solver." + p.key + " = "));
      }
    }
  }
}

// The library's shared caches and tables from several threads at once (ThreadSanitizer runs
// this: scripts/test --tsan): the Gauss-Legendre cache, the solver tables, the order problems and
// their lazily computed references. Every thread sees the same entries.
TEST_CASE("shared caches and tables are safe and identical from four threads", "[threads]") {
  constexpr int threads = 4;
  std::vector<const std::pair<std::vector<double>, std::vector<double>>*> rules(threads);
  std::vector<const OrderProblem<double>*> problems(threads);
  std::vector<double> references(threads);
  std::vector<size_t> solvers(threads);
  std::vector<std::thread> pool;
  for (int k = 0; k < threads; ++k)
    pool.emplace_back([&, k] {
      for (int n = 40; n >= 2; --n) rules[k] = &gauss_legendre_cached<double>(n + k % 2);
      size_t built = 0;
      for (const auto& name : solver_names()) built += make_solver<double>(json(name)) != nullptr;
      solvers[k] = built;
      problems[k] = &order_problem<double>("gaussian");
      references[k] = problems[k]->reference()(0, 0);
    });
  for (auto& t : pool) t.join();
  for (int k = 1; k < threads; ++k) {
    CHECK(rules[k] == rules[k % 2]);  // the same cache entry for the same n
    CHECK(problems[k] == problems[0]);
    CHECK(references[k] == references[0]);
    CHECK(solvers[k] == solver_names().size());
  }
  CHECK(rules[0]->first.size() == 2);
  CHECK(rules[1]->first.size() == 3);
}
