// Solvers by command-line name, from their records (solver_record.hpp): make_solver builds one
// from a name or a JSON object {"name": ..., parameters}, with every parameter validated against
// the record (errors name the JSON path).
//
//   auto a = make_solver<double>(json("dpm-solver++-3m"));
//   auto b = make_solver<double>(json{{"name", "unipc"}, {"variant", "bh2"}, {"order", 2}});
//   auto c = make_solver<mp50>(json{{"name", "gddim"}, {"order", 0}, {"K", "R"}});
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pflow/sampler/solver.hpp"
#include "pflow/sampler/solver_record.hpp"

namespace pflow {

// Every solver's record, in the order `pflow list` shows them.
template <class Scalar>
const SolverTable<Scalar>& solver_table();
std::vector<std::string> solver_names();

template <class Scalar>
std::unique_ptr<Solver<Scalar>> make_solver(const nlohmann::json& spec,
                                            const std::string& path = "solver");

// The order a solver spec declares on an SDE whose covariance has blocks of `block_size`
// (its record's order_on_sde; the built solver's order where the record has none).
int declared_order(const nlohmann::json& spec, int block_size);

// The order tests of every record that run on `problem` (order_problem_names()), in registry
// order: the README's order table, `pflow orders` and the [orders] tests.
std::vector<OrderTest> order_tests_on(const std::string& problem);

namespace detail {
// The record index of spec.name (errors: not a name, unknown name with the closest one).
size_t solver_index(const nlohmann::json& object, const std::string& path);
// "unipc(order=3,variant=bh1)": the name and its explicitly given parameters, or spec.label.
std::string solver_label(const nlohmann::json& spec, const std::string& name);
}  // namespace detail

extern template const SolverTable<double>& solver_table<double>();
extern template const SolverTable<mp50>& solver_table<mp50>();
extern template std::unique_ptr<Solver<double>> make_solver<double>(const nlohmann::json&,
                                                                    const std::string&);
extern template std::unique_ptr<Solver<mp50>> make_solver<mp50>(const nlohmann::json&,
                                                                const std::string&);
extern template const SolverTable<f128>& solver_table<f128>();
extern template std::unique_ptr<Solver<f128>> make_solver<f128>(const nlohmann::json&,
                                                                const std::string&);

}  // namespace pflow
