#include <map>
#include <mutex>

#include "pflow/sampler/convergence.hpp"
#include "pflow/sde/factory.hpp"

namespace pflow {

std::vector<std::string> order_problem_names() {
  return {"gaussian", "mixture", "cld", "gaussian-short", "rectified-flow"};
}

namespace {

const nlohmann::json& problem_config(const std::string& name) {
  static const std::map<std::string, nlohmann::json> configs = {
      {"gaussian",
       {{"sde", {{"type", "vp-linear"}, {"beta_min", 0.1}, {"beta_max", 20.0}}},
        {"target",
         {{"type", "gaussian"}, {"mean", {0.5, -1.0}}, {"cov", {{1.0, 0.8}, {0.8, 0.9}}}}},
        {"init", {{0.3, -1.1}, {1.2, 0.4}, {-0.8, 0.9}, {-1.5, -0.6}}},
        {"grid", "logsnr"}}},
      {"mixture",
       {{"sde", {{"type", "vp-linear"}, {"beta_min", 0.1}, {"beta_max", 20.0}}},
        {"target",
         {{"type", "gmm"},
          {"weights", {0.3, 0.45, 0.25}},
          {"means", {{-1.5, 0.3}, {1.0, 1.0}, {0.5, -1.5}}},
          {"covs",
           {{{0.2, 0.12}, {0.12, 0.15}}, {{0.3, -0.1}, {-0.1, 0.1}}, {{0.05, 0.0}, {0.0, 0.4}}}}}},
        {"init", {{0.3, -1.1}, {1.2, 0.4}, {-0.8, 0.9}, {-1.5, -0.6}}},
        {"grid", "logsnr"}}},
      {"gaussian-short",
       {{"sde", {{"type", "vp-linear"}, {"beta_min", 0.1}, {"beta_max", 20.0}}},
        {"target",
         {{"type", "gaussian"}, {"mean", {0.5, -1.0}}, {"cov", {{1.0, 0.8}, {0.8, 0.9}}}}},
        {"init", {{0.3, -1.1}, {1.2, 0.4}, {-0.8, 0.9}, {-1.5, -0.6}}},
        {"t_start", 0.5},
        {"t_end", 0.1},
        {"grid", "logsnr"}}},
      {"rectified-flow",
       {{"sde", {{"type", "rectified-flow"}}},
        {"target",
         {{"type", "gaussian"}, {"mean", {0.5, -1.0}}, {"cov", {{1.0, 0.8}, {0.8, 0.9}}}}},
        {"init", {{0.3, -1.1}, {1.2, 0.4}, {-0.8, 0.9}, {-1.5, -0.6}}},
        {"t_start", 0.999},
        {"grid", "time-uniform"}}},
      {"cld",
       {{"sde", {{"type", "cld"}}},
        {"target", {{"type", "gaussian"}, {"mean", {0.7}}, {"cov", {{0.5}}}}},
        {"init", {{0.3, -1.1}, {1.2, 0.4}, {-0.8, 0.9}, {-1.5, -0.6}}},
        {"grid", "time-quadratic"}}},
  };
  const auto it = configs.find(name);
  if (it == configs.end()) {
    std::vector<std::string> names = order_problem_names();
    const std::string hint = closest_name(name, names);
    throw InputError("--problem", name,
                     "unknown problem" + (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
  }
  return it->second;
}

template <class Scalar>
OrderProblem<Scalar> build(const std::string& name) {
  const nlohmann::json& c = problem_config(name);
  OrderProblem<Scalar> p;
  p.name = name;
  p.data = std::make_shared<GaussianMixture<Scalar>>(make_target<Scalar>(c["target"]));
  p.sde = std::shared_ptr<LinearSde<Scalar>>(make_sde<Scalar>(c["sde"], p.data->dim()));
  p.model = std::make_shared<AnalyticDenoiser<Scalar>>(*p.sde, *p.data);
  p.t_start = c.contains("t_start") ? from_double<Scalar>(c["t_start"].get<double>()) : Scalar(1);
  p.t_end =
      c.contains("t_end") ? from_double<Scalar>(c["t_end"].get<double>()) : ratio<Scalar>(1, 1000);
  p.grid.kind = c["grid"].get<std::string>();
  const auto& init = c["init"];
  p.x_start.resize(p.sde->state_dim(), static_cast<Eigen::Index>(init.size()));
  for (size_t j = 0; j < init.size(); ++j)
    for (Eigen::Index i = 0; i < p.x_start.rows(); ++i)
      p.x_start(i, j) = from_double<Scalar>(init[j][i].get<double>());
  // References are computed in 50 digits and rounded: the exact flow map (the R-ODE for matrix
  // SDEs, which in double is good to ~1e-13 only), or the Bulirsch-Stoer solve at 1e-32.
  // Computed on first use (OrderProblem::reference).
  if constexpr (ScalarTraits<Scalar>::is_reference) {
    p.set_reference([sde = p.sde, data = p.data, x = p.x_start, s = p.t_start, t = p.t_end] {
      return data->components() == 1 ? exact_flow_map(*sde, *data, x, s, t)
                                     : reference_flow<mp50>(*sde, *data, x, s, t);
    });
  } else {
    p.set_reference([name] {
      return Mat<Scalar>(order_problem<mp50>(name).reference().template cast<Scalar>());
    });
  }
  p.reference_method = p.data->components() == 1 ? "exact flow map, 50 digits"
                                                 : "Bulirsch-Stoer, 50 digits, tolerance 1e-32";
  return p;
}

}  // namespace

template <class Scalar>
const OrderProblem<Scalar>& order_problem(const std::string& name) {
  static std::mutex mutex;
  static std::map<std::string, OrderProblem<Scalar>> cache;
  {
    std::lock_guard<std::mutex> lock(mutex);
    const auto it = cache.find(name);
    if (it != cache.end()) return it->second;
  }
  OrderProblem<Scalar> built = build<Scalar>(name);
  std::lock_guard<std::mutex> lock(mutex);
  return cache.emplace(name, std::move(built)).first->second;
}

template const OrderProblem<double>& order_problem<double>(const std::string&);
template const OrderProblem<mp50>& order_problem<mp50>(const std::string&);
template const OrderProblem<f128>& order_problem<f128>(const std::string&);
PFLOW_CONVERGENCE_INSTANTIATION(, double)
PFLOW_CONVERGENCE_INSTANTIATION(, mp50)
PFLOW_CONVERGENCE_INSTANTIATION(, f128)

}  // namespace pflow
