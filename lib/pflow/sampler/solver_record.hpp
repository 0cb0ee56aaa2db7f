// One record per solver (docs/NOTES.md sec. 9): its name, family, reference, typed parameters
// with ranges and defaults, what its parameters make of it (declared order, evaluations per step,
// flags), how its order is tested, and how it is built. make_solver, config validation,
// `pflow list`, `pflow orders` and the order tests all read these records; nothing about a solver
// is written anywhere else.
//
// A family file (exponential.hpp, deis.hpp, unipc.hpp, matrix.hpp, odeint_solvers.hpp,
// stochastic.hpp) declares its records in one function, add_<family>_solvers(table); the registry
// (registry_impl.hpp) calls each such function once. Adding a solver to a family touches only that
// family's file; a new family adds one line to the registry. README "Adding a solver" has an
// example.
#pragma once

#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pflow/sampler/solver.hpp"

namespace pflow {

// The problems every scalar-SDE method is order-tested on.
inline std::vector<std::string> scalar_order_problems() {
  return {"gaussian", "mixture"};
}

// A solver parameter: its JSON key, type, default and allowed values.
struct ParameterSpec {
  enum class Type { integer, number, text, boolean };
  std::string key;
  Type type = Type::text;
  nlohmann::json fallback;  // the default
  // Integer and number parameters: the allowed range (open ends excluded for numbers).
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  bool open = false;
  std::vector<std::string> choices;  // text parameters
};

// Closed range [lo, hi], or open (lo, hi) with `open` (numbers only).
inline ParameterSpec number_parameter(std::string key, double fallback, double lo, double hi,
                                      bool open = false) {
  ParameterSpec p;
  p.key = std::move(key);
  p.type = ParameterSpec::Type::number;
  p.fallback = fallback;
  p.lo = lo;
  p.hi = hi;
  p.open = open;
  return p;
}
inline ParameterSpec integer_parameter(std::string key, int fallback, int lo, int hi) {
  ParameterSpec p = number_parameter(std::move(key), 0, lo, hi);
  p.type = ParameterSpec::Type::integer;
  p.fallback = fallback;
  return p;
}
inline ParameterSpec text_parameter(std::string key, std::string fallback,
                                    std::vector<std::string> choices) {
  ParameterSpec p;
  p.key = std::move(key);
  p.fallback = std::move(fallback);
  p.choices = std::move(choices);
  return p;
}
inline ParameterSpec boolean_parameter(std::string key, bool fallback) {
  ParameterSpec p;
  p.key = std::move(key);
  p.type = ParameterSpec::Type::boolean;
  p.fallback = fallback;
  return p;
}

// The validated parameters of one solver spec: every parameter of its record, defaults filled in.
class SolverParams {
 public:
  SolverParams(nlohmann::json values, std::string path)
      : values_(std::move(values)), path_(std::move(path)) {}
  int integer(const std::string& key) const { return values_.at(key).get<int>(); }
  double number(const std::string& key) const { return values_.at(key).get<double>(); }
  std::string text(const std::string& key) const { return values_.at(key).get<std::string>(); }
  bool boolean(const std::string& key) const { return values_.at(key).get<bool>(); }
  // The JSON path of a parameter, for error messages: "solvers[2].order".
  std::string at(const std::string& key) const { return path_ + "." + key; }
  const nlohmann::json& values() const { return values_; }

 private:
  nlohmann::json values_;
  std::string path_;
};

// What a solver's parameters make of it (copied into its SolverInfo).
struct SolverTraits {
  int order = 1;           // declared order (strong order if stochastic; 0: none, as adaptive)
  int evals_per_step = 1;  // model evaluations per step; 0 when adaptive
  bool stochastic = false;
  int weak_order = 0;  // stochastic solvers
  bool adaptive = false;
  bool scalar_sde_only = false;  // needs alpha, sigma, lambda (not CLD, blurring, linear)
  // The time grid whose steps the solver's weights assume ("" = any grid): fixed-weight
  // multistep methods need equal steps in their variable.
  std::string uniform_grid;
};

// One order test: the spec is run on each named problem (order_problem_names()) over a step ladder
// and its fitted order must reach the declared one within 0.2.
struct OrderTest {
  nlohmann::json spec;
  std::vector<std::string> problems;
  std::vector<std::string> exact_on = {};  // problems on which the method is exact (no order)
  // A fitted order above this fails too: for a method published with a higher order than it has.
  double order_at_most = std::numeric_limits<double>::infinity();
};

// Everything about a solver except how it is built (which depends on the number type).
struct SolverDescription {
  std::string name;
  std::string family;  // "exponential", "multistep", "matrix", "odeint", "stochastic"
  std::string reference;
  std::vector<ParameterSpec> parameters;
  std::function<SolverTraits(const SolverParams&)> traits;
  std::string order_note;  // qualifies the declared order in `pflow list`
  // The declared order on an SDE whose covariance has blocks of `block_size` (1: scalar or
  // fixed-axes SDEs); unset: traits().order on every SDE.
  std::function<int(const SolverParams&, int block_size)> order_on_sde;
  // Rules that tie parameters together (each parameter's own range is checked before);
  // throws InputError naming the parameter.
  std::function<void(const SolverParams&)> check;
  std::vector<OrderTest> order_tests;
  std::string order_test_exempt;  // why there is no order test (set iff order_tests is empty)
};

template <class Scalar>
struct SolverRecord : SolverDescription {
  std::function<std::unique_ptr<Solver<Scalar>>(const SolverParams&, SolverInfo)> make;
};

template <class Scalar>
using SolverTable = std::vector<SolverRecord<Scalar>>;

// Validates a spec's keys and values against a record's parameters (errors name the JSON path;
// unknown keys get the closest valid name), fills in defaults and runs the record's check.
SolverParams read_solver_params(const SolverDescription& record, const nlohmann::json& object,
                                const std::string& path);

// "order = 2 (1 to 3), variant = bh2 (bh1, bh2)": a record's parameters for `pflow list`.
std::string describe_parameters(const SolverDescription& record);

}  // namespace pflow
