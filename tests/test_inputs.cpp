// Bad parameters raise an InputError that names the parameter (JSON path) and its value.
#include <catch2/catch.hpp>

#include <fstream>

#include "helpers.hpp"
#include "pflow/core/json_fields.hpp"
#include "pflow/experiment/config.hpp"
#include "pflow/sampler/registry.hpp"
#include "pflow/sde/factory.hpp"
#include "pflow/target/marginal.hpp"

using namespace pflow;
using Catch::Contains;
using nlohmann::json;

namespace {

// The message of the InputError thrown by f, or "" if none is thrown.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

std::string sde_error(const json& config, int dim = 2) {
  return error_of([&] { make_sde<double>(config, dim); });
}
std::string target_error(const json& config) {
  return error_of([&] { make_target<double>(config); });
}

}  // namespace

TEST_CASE("SDE parameters out of range name the field and value", "[inputs]") {
  CHECK_THAT(sde_error({{"type", "vp-linear"}, {"beta_min", -0.1}}),
             Contains("sde.beta_min = -0.1") && Contains("non-negative"));
  CHECK_THAT(sde_error({{"type", "sub-vp"}, {"beta_max", -20}}),
             Contains("sde.beta_max = -20") && Contains("positive"));
  CHECK_THAT(sde_error({{"type", "ve"}, {"sigma_min", 50}, {"sigma_max", 0.01}}),
             Contains("sde.sigma_max = 0.01") && Contains("must exceed sigma_min = 50"));
  CHECK_THAT(sde_error({{"type", "edm"}, {"sigma_min", 80}, {"sigma_max", 80}}),
             Contains("sde.sigma_max = 80"));
  CHECK_THAT(sde_error({{"type", "ve"}, {"sigma_min", 0}}), Contains("sde.sigma_min = 0"));
  CHECK_THAT(sde_error({{"type", "vp-cosine"}, {"s", 1.5}}), Contains("sde.s = 1.5"));
  CHECK_THAT(sde_error({{"type", "cld"}, {"beta", -4}}), Contains("sde.beta = -4"));
  CHECK_THAT(sde_error({{"type", "cld"}, {"M", 0}}), Contains("sde.M = 0"));
  CHECK_THAT(sde_error({{"type", "blurring"}, {"shape", {1, 2, 2}}, {"blur_sigma_max", -1}}, 4),
             Contains("sde.blur_sigma_max = -1"));
}

TEST_CASE("SDE configs with wrong names, types or shapes are rejected clearly", "[inputs]") {
  CHECK_THAT(sde_error({{"type", "vp-lnear"}}),
             Contains("sde.type = \"vp-lnear\"") && Contains("did you mean 'vp-linear'"));
  CHECK_THAT(sde_error({{"type", "vp-linear"}, {"beta_mn", 0.1}}),
             Contains("sde.beta_mn") && Contains("did you mean 'beta_min'"));
  CHECK_THAT(sde_error({{"type", "vp-linear"}, {"beta_min", "0.1"}}),
             Contains("sde.beta_min = \"0.1\"") && Contains("must be a number"));
  CHECK_THAT(sde_error({{"beta_min", 0.1}}), Contains("sde.type") && Contains("required"));
  CHECK_THAT(sde_error({{"type", "blurring"}, {"shape", {1, 4, 4}}}, 8),
             Contains("sde.shape = 16") && Contains("data dimension 8"));
  CHECK_THAT(sde_error({{"type", "blurring"}, {"shape", {1, 4}}}, 4),
             Contains("sde.shape = [1,4]"));
  CHECK_THAT(sde_error({{"type", "linear"}, {"Fbar", {{-1.0, 0.0}}}, {"Gbar", {{1.0}}}}, 1),
             Contains("sde.Fbar") && Contains("square"));
  CHECK_THAT(sde_error({{"type", "linear"}, {"Fbar", {{-1.0}}}, {"Gbar", {{1.0}, {2.0}}}}, 1),
             Contains("sde.Gbar rows = 2"));
  CHECK_THAT(sde_error({{"type", "vp-linear"}}, 0), Contains("data_dim = 0"));
}

TEST_CASE("Target parameters: covariances, weights and dimensions are validated", "[inputs]") {
  // Non-positive-definite covariance.
  CHECK_THAT(
      target_error({{"type", "gaussian"}, {"mean", {0.0, 0.0}}, {"cov", {{1.0, 2.0}, {2.0, 1.0}}}}),
      Contains("target.cov") && Contains("positive definite"));
  // Asymmetric covariance.
  CHECK_THAT(
      target_error({{"type", "gaussian"}, {"mean", {0.0, 0.0}}, {"cov", {{1.0, 0.5}, {0.0, 1.0}}}}),
      Contains("target.cov") && Contains("symmetric"));
  // Weights that do not sum to 1.
  CHECK_THAT(target_error({{"type", "gmm"},
                           {"weights", {0.3, 0.6}},
                           {"means", {{0.0}, {1.0}}},
                           {"covs", {{{1.0}}, {{1.0}}}}}),
             Contains("target.weights = sum 0.8999999999999999") && Contains("sum to 1"));
  CHECK_THAT(target_error({{"type", "gmm"},
                           {"weights", {-0.5, 1.5}},
                           {"means", {{0.0}, {1.0}}},
                           {"covs", {{{1.0}}, {{1.0}}}}}),
             Contains("target.weights[0] = -0.5") && Contains("positive"));
  // Mismatched dimensions.
  CHECK_THAT(target_error({{"type", "gaussian"}, {"mean", {0.0, 0.0}}, {"cov", {{1.0}}}}),
             Contains("target.cov = 1x1") && Contains("must be 2x2"));
  CHECK_THAT(target_error({{"type", "gmm"},
                           {"weights", {0.5, 0.5}},
                           {"means", {{0.0, 1.0}, {1.0}}},
                           {"covs", {{{1.0}}, {{1.0}}}}}),
             Contains("target.means[1]") && Contains("like row 0"));
  CHECK_THAT(target_error({{"type", "gmm"},
                           {"weights", {0.5, 0.5}},
                           {"means", {{0.0}, {1.0}, {2.0}}},
                           {"covs", {{{1.0}}, {{1.0}}}}}),
             Contains("target.means = 3 columns"));
  CHECK_THAT(target_error({{"type", "gmm"},
                           {"weights", {0.5, 0.5}},
                           {"means", {{0.0}, {1.0}}},
                           {"diag_covs", {{1.0}, {0.0}}}}),
             Contains("target.diag_covs[1][0] = 0") && Contains("positive"));
  CHECK_THAT(target_error({{"type", "dirac"}, {"pont", {1.0}}}), Contains("did you mean 'point'"));
  // Target and SDE of different dimensions.
  const auto sde = make_sde<double>({{"type", "vp-linear"}}, 3);
  const auto data = make_target<double>({{"type", "dirac"}, {"point", {1.0, 2.0}}});
  CHECK_THAT(error_of([&] { Marginal<double>(*sde, data, 0.5); }),
             Contains("target dimension = 2") && Contains("data dimension 3"));
}

// Found by the config fuzzer (tests/fuzz) and its review: values that used to wrap or overflow.
TEST_CASE("Integers beyond int and huge image shapes are rejected and long names accepted",
          "[inputs]") {
  // get<int>() wrapped 4294967298 to 2 and accepted it.
  CHECK_THAT(error_of([] {
               make_solver<double>(json{{"name", "unipc"}, {"order", 4294967298}});
             }),
             Contains("solver.order = 4294967298") && Contains("out of range"));
  CHECK_THAT(sde_error({{"type", "blurring"}, {"shape", {4294967297, 1, 1}}}, 1),
             Contains("sde.shape[0] = 4294967297") && Contains("out of range"));
  // 641 * 6700417 = 2^32 + 1: the int product overflowed (UB) and wrapped onto dimension 1.
  CHECK_THAT(sde_error({{"type", "blurring"}, {"shape", {1, 641, 6700417}}}, 1),
             Contains("sde.shape = [1,641,6700417]") && Contains("too many coordinates"));
  // A long (valid) name: std::regex recursed per character and overflowed the stack.
  std::ifstream in(PFLOW_TEST_DATA "/tiny_convergence.json");
  json config = json::parse(in);
  config["name"] = std::string(200000, 'a');
  CHECK(parse_experiment(config).name.size() == 200000);
  // A double beyond uint64_t was cast to it (UB).
  config["init"] = {{"count", 2}, {"seed", 2e56}};
  CHECK_THAT(error_of([&] { parse_experiment(config); }), Contains("init.seed = 2e+56"));
  config["init"]["seed"] = 7;
  config["nfe"] = {16, 4294967328};
  CHECK_THAT(error_of([&] { parse_experiment(config); }),
             Contains("nfe[1] = 4294967328") && Contains("out of range"));
}

TEST_CASE("JSON nesting is bounded at 64 levels before anything walks it", "[inputs]") {
  const auto nest = [](int depth) {
    return std::string(static_cast<size_t>(depth), '[') + "1" +
           std::string(static_cast<size_t>(depth), ']');
  };
  CHECK(json_nesting_excess(nest(64), 64) == -1);
  CHECK(json_nesting_excess(nest(65), 64) == 64);  // the byte of the 65th bracket
  // Brackets inside strings (escaped quotes included) do not count.
  CHECK(json_nesting_excess("[\"[[[\\\"[[[\", {\"k\": \"{{{\"}]", 2) == -1);
  CHECK(parse_json_text(nest(64), "f", "v").is_array());
  CHECK_THAT(error_of([&] { parse_json_text("\n" + nest(100000), "config file", "x.json"); }),
             Contains("config file = x.json: nests arrays and objects more than 64 levels deep "
                      "(line 2, byte 65)"));
  CHECK(parse_json_text("{\"a\": [1,", "f", "v").is_discarded());  // invalid: the caller's call

  // A value built in memory (no text): walked without recursion, refused past 64 levels.
  json deep = 1;
  for (int i = 0; i < 100000; ++i) deep = json::array({std::move(deep)});
  CHECK_THAT(error_of([&] { require_bounded_depth(deep, "config"); }),
             Contains("config = (a value 65 levels deep): nests arrays and objects more than 64"));
  json config = pflow::testing::tiny_config();
  config["target"]["means"] = std::move(deep);  // moved: a copy would recurse per level
  CHECK_THAT(error_of([&] { parse_experiment(config); }), Contains("more than 64 levels deep"));
}

TEST_CASE("free-form fields are type-checked and long values are shortened in messages",
          "[inputs]") {
  json config = pflow::testing::tiny_config();
  config["description"] = "a run for the paper, fig. 3";
  CHECK(parse_experiment(config).normalized["description"] == "a run for the paper, fig. 3");
  config["description"] = json::array({1, 2});
  CHECK_THAT(error_of([&] { parse_experiment(config); }),
             Contains("description = [1,2]: must be a string"));
  config["description"] = std::string(100001, 'x');
  CHECK_THAT(error_of([&] { parse_experiment(config); }),
             Contains("description = (100001 characters): is longer than 100000 characters"));
  config.erase("description");
  // An unknown key of 100,000 characters: no "did you mean" table of its size, and the message
  // prints its start and its length.
  config[std::string(100000, 'k')] = 1;
  const std::string message = error_of([&] { parse_experiment(config); });
  CHECK_THAT(message, Contains("... (100007 characters) = 1: unknown key; valid keys:"));
  CHECK(message.size() < 1000);
}
