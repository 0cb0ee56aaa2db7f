#include "pflow/sde/factory.hpp"

#include "pflow/core/json_fields.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "pflow/core/lapack.hpp"
#include "pflow/sde/blurring.hpp"
#include "pflow/sde/cld.hpp"
#include "pflow/sde/linear_sde.hpp"
#include "pflow/sde/scalar_sdes.hpp"
#include "pflow/sde/vp_discrete.hpp"
#include "pflow/target/dataset.hpp"
#include "pflow/target/low_rank.hpp"

namespace pflow {

const std::vector<SdeInfo>& sde_catalogue() {
  static const std::vector<SdeInfo> catalogue = {
      {"vp-linear", "beta_min = 0.1, beta_max = 20", "Ho et al. 2020; Song et al. 2021 (VP SDE)"},
      {"vp-cosine", "s = 0.008", "Nichol & Dhariwal 2021, eq. 17"},
      {"vp-discrete",
       "betas = [beta_1, ..., beta_N], or schedule = linear (1e-4 to 0.02) | vp-linear (beta_min "
       "= 0.1, beta_max = 20, Song et al. sec. 3.4) | cosine, with T = 1000 steps",
       "Ho et al. 2020 (DDPM's chain); log alpha piecewise linear in t, t_i = i / N, as "
       "DPM-Solver (Lu et al. 2022) for discrete-time models"},
      {"sub-vp", "beta_min = 0.1, beta_max = 20", "Song et al. 2021, eq. 29"},
      {"rectified-flow", "(none): alpha = 1 - t, sigma = t",
       "Liu et al. 2022 (rectified flow); Lipman et al. 2022 (flow matching)"},
      {"ve", "sigma_min = 0.01, sigma_max = 50", "Song et al. 2021, eq. 30"},
      {"edm", "sigma_min = 0.002, sigma_max = 80", "Karras et al. 2022, table 1"},
      {"cld", "beta = 4, M = 0.25, gamma = 0.04 (Gamma = 2 sqrt(M))", "Dockhorn et al. 2022"},
      {"blurring", "shape = [C, H, W], beta_min = 0.1, beta_max = 20, blur_sigma_max = 1",
       "Hoogeboom & Salimans 2022"},
      {"linear", "Fbar (D x D), Gbar (D x m), beta_min = 1, beta_max = 1, Sigma0 = 0",
       "F = beta(t) Fbar, G G^T = beta(t) Gbar Gbar^T; Van Loan 1978"},
  };
  return catalogue;
}

namespace {

std::string type_of(const json& config, const std::string& path,
                    const std::vector<std::string>& types) {
  require(config.is_object(), path, config.dump(), "must be a JSON object");
  require(config.contains("type"), path + ".type", "(missing)", "is required");
  const json& t = config.at("type");
  require(t.is_string(), path + ".type", t.dump(), "must be a string");
  const std::string name = t.get<std::string>();
  if (std::find(types.begin(), types.end(), name) == types.end()) {
    const std::string hint = closest_name(name, types);
    std::string all;
    for (const auto& x : types) all += (all.empty() ? "" : ", ") + x;
    throw InputError(path + ".type", t.dump(),
                     "unknown type" + (hint.empty() ? "" : " (did you mean '" + hint + "'?)") +
                         "; valid types: " + all);
  }
  return name;
}

// Runs a constructor, re-anchoring its parameter errors at the JSON path ("sde" + "beta_min").
template <class Build>
auto at_path(const std::string& path, Build&& build) {
  try {
    return build();
  } catch (const InputError& e) {
    throw e.under(path);
  }
}

}  // namespace

template <class Scalar>
std::unique_ptr<LinearSde<Scalar>> make_sde(const json& config, int data_dim,
                                            const std::string& path) {
  std::vector<std::string> types;
  for (const auto& info : sde_catalogue()) types.push_back(info.name);
  const std::string type = type_of(config, path, types);
  auto check_dim = [&](int d, const std::string& field) {
    require(data_dim <= 0 || d == data_dim, path + "." + field, d,
            "does not match the data dimension " + to_text(data_dim));
  };
  if (type == "vp-linear" || type == "sub-vp") {
    Fields f(config, path, {"type", "beta_min", "beta_max"});
    const Scalar b0 = f.number<Scalar>("beta_min", 0.1), b1 = f.number<Scalar>("beta_max", 20.0);
    return at_path(path, [&]() -> std::unique_ptr<LinearSde<Scalar>> {
      if (type == "vp-linear") return std::make_unique<VpLinear<Scalar>>(b0, b1, data_dim);
      return std::make_unique<SubVp<Scalar>>(b0, b1, data_dim);
    });
  }
  if (type == "vp-cosine") {
    Fields f(config, path, {"type", "s"});
    const Scalar s = f.number<Scalar>("s", 0.008);
    return at_path(path, [&] { return std::make_unique<VpCosine<Scalar>>(s, data_dim); });
  }
  if (type == "rectified-flow") {
    Fields f(config, path, {"type"});
    return std::make_unique<RectifiedFlow<Scalar>>(data_dim);
  }
  if (type == "vp-discrete") {
    // An explicit list of betas, or a named schedule over T steps (README, "Discrete time").
    Fields f(config, path, {"type", "betas", "schedule", "T", "beta_min", "beta_max"});
    require(f.has("betas") != f.has("schedule"), path, config.dump(),
            "needs exactly one of 'betas' (a list) and 'schedule' (linear, vp-linear, cosine)");
    std::vector<Scalar> betas;
    if (f.has("betas")) {
      for (const char* key : {"T", "beta_min", "beta_max"})
        if (f.has(key))
          throw InputError(f.at(key), f.raw(key).dump(),
                           "applies to a named schedule, not to an explicit list of betas");
      const Vec<Scalar> list = f.vector<Scalar>("betas");
      require(list.size() >= 1 && list.size() <= 100000, f.at("betas"), list.size(),
              "must list 1 to 100000 betas");
      betas.assign(list.data(), list.data() + list.size());
    } else {
      const std::string schedule =
          f.text("schedule", std::nullopt, {"linear", "vp-linear", "cosine"});
      const int steps = f.integer("T", 1000);
      require(steps >= 1 && steps <= 100000, f.at("T"), steps, "must be 1 to 100000 steps");
      if (schedule != "vp-linear")
        for (const char* key : {"beta_min", "beta_max"})
          if (f.has(key))
            throw InputError(f.at(key), f.raw(key).dump(),
                             "applies to the schedule \"vp-linear\" only");
      const Scalar b0 = f.number<Scalar>("beta_min", 0.1), b1 = f.number<Scalar>("beta_max", 20.0);
      // Only vp-linear's betas scale with 1 / T (linear is DDPM's 1e-4 .. 0.02 at every T).
      if (schedule == "vp-linear")
        require(b0 > 0 && b1 >= b0 && b1 < Scalar(steps), f.at("beta_max"), b1,
                "needs 0 < beta_min <= beta_max < T (each beta_i = beta(t) / T in (0, 1))");
      betas = discrete_betas<Scalar>(schedule, steps, b0, b1);
    }
    return at_path(path, [&] { return std::make_unique<VpDiscrete<Scalar>>(betas, data_dim); });
  }
  if (type == "ve" || type == "edm") {
    const bool ve = type == "ve";
    Fields f(config, path, {"type", "sigma_min", "sigma_max"});
    const Scalar lo = f.number<Scalar>("sigma_min", ve ? 0.01 : 0.002);
    const Scalar hi = f.number<Scalar>("sigma_max", ve ? 50.0 : 80.0);
    return at_path(path, [&]() -> std::unique_ptr<LinearSde<Scalar>> {
      if (ve) return std::make_unique<Ve<Scalar>>(lo, hi, data_dim);
      return std::make_unique<Edm<Scalar>>(lo, hi, data_dim);
    });
  }
  if (type == "cld") {
    Fields f(config, path, {"type", "beta", "M", "gamma"});
    const Scalar beta = f.number<Scalar>("beta", 4.0), m = f.number<Scalar>("M", 0.25);
    const Scalar gamma = f.number<Scalar>("gamma", 0.04);
    return at_path(path, [&] { return std::make_unique<Cld<Scalar>>(beta, m, gamma, data_dim); });
  }
  if (type == "blurring") {
    Fields f(config, path, {"type", "shape", "beta_min", "beta_max", "blur_sigma_max"});
    require(f.has("shape"), f.at("shape"), "(missing)", "is required: [channels, height, width]");
    const json& shape = f.raw("shape");
    require(shape.is_array() && shape.size() == 3, f.at("shape"), shape.dump(),
            "must be [channels, height, width] of positive integers");
    int dims[3];
    for (int k = 0; k < 3; ++k) {
      const std::string at = f.at("shape") + "[" + std::to_string(k) + "]";
      dims[k] = Fields::integer_of(shape[k], at);
      require(dims[k] > 0, at, dims[k], "must be positive");
    }
    const int c = dims[0], h = dims[1], w = dims[2];
    // The product in double first: in int it can overflow (and wrap onto the data dimension).
    const double size = static_cast<double>(c) * h * w;
    require(size <= std::numeric_limits<int>::max(), f.at("shape"), shape.dump(),
            "has too many coordinates (C H W = " + to_text(size) + ")");
    check_dim(c * h * w, "shape");
    const Scalar b0 = f.number<Scalar>("beta_min", 0.1), b1 = f.number<Scalar>("beta_max", 20.0);
    const Scalar blur = f.number<Scalar>("blur_sigma_max", 1.0);
    return at_path(path, [&] { return std::make_unique<Blurring<Scalar>>(b0, b1, blur, c, h, w); });
  }
  // linear
  Fields f(config, path, {"type", "Fbar", "Gbar", "beta_min", "beta_max", "Sigma0"});
  const Mat<Scalar> fbar = f.matrix<Scalar>("Fbar"), gbar = f.matrix<Scalar>("Gbar");
  check_dim(static_cast<int>(fbar.rows()), "Fbar");
  const Mat<Scalar> sigma0 = f.has("Sigma0") ? f.matrix<Scalar>("Sigma0") : Mat<Scalar>();
  const Scalar b0 = f.number<Scalar>("beta_min", 1.0), b1 = f.number<Scalar>("beta_max", 1.0);
  return at_path(
      path, [&] { return std::make_unique<GenericLinear<Scalar>>(fbar, gbar, b0, b1, sigma0); });
}

// The spec of a gaussian target's "generated" field, which stands in for its mean and cov.
static GeneratedGaussianSpec generated_spec_of(const Fields& gaussian) {
  require(!gaussian.has("mean") && !gaussian.has("cov"), gaussian.at("generated"), "(given)",
          "replaces 'mean' and 'cov': give either the generator or both of them");
  return generated_gaussian_spec(gaussian.raw("generated"), gaussian.at("generated"));
}

// A gmm's weights, means and covariances (full or diagonal).
template <class Scalar>
GaussianMixture<Scalar> gmm_of(const Fields& f, const json& config, const std::string& path) {
  const Vec<Scalar> weights = f.vector<Scalar>("weights");
  const Mat<Scalar> means_rows = f.matrix<Scalar>("means");  // K rows of d
  const Mat<Scalar> means = means_rows.transpose();
  require(f.has("covs") != f.has("diag_covs"), path, config.dump(),
          "needs exactly one of 'covs' and 'diag_covs'");
  if (f.has("diag_covs")) {
    const Mat<Scalar> diag = f.matrix<Scalar>("diag_covs").transpose();
    return at_path(path,
                   [&] { return GaussianMixture<Scalar>::gmm_diagonal(weights, means, diag); });
  }
  const json& covs = f.raw("covs");
  require(covs.is_array(), f.at("covs"), covs.dump(), "must be an array of matrices");
  std::vector<Mat<Scalar>> list;
  for (size_t k = 0; k < covs.size(); ++k)
    list.push_back(
        Fields::matrix_of<Scalar>(covs[k], f.at("covs") + "[" + std::to_string(k) + "]"));
  return at_path(path, [&] { return GaussianMixture<Scalar>::gmm(weights, means, list); });
}

template <class Scalar>
GaussianMixture<Scalar> make_target(const json& config, const std::string& path) {
  require(!is_dataset_target(config), path + ".type", "dataset",
          "is a sample-only data set (no density, no score): here a mixture is needed (dirac, "
          "gaussian or gmm)");
  const std::string type = type_of(config, path, {"dirac", "gaussian", "gmm"});
  if (type == "dirac") {
    Fields f(config, path, {"type", "point"});
    const Vec<Scalar> point = f.vector<Scalar>("point");
    return at_path(path, [&] { return GaussianMixture<Scalar>::dirac(point); });
  }
  if (type == "gaussian") {
    Fields f(config, path, {"type", "mean", "cov", "generated"});
    if (f.has("generated")) {
      const auto generated = generate_gaussian(generated_spec_of(f));
      return at_path(path, [&] {
        return GaussianMixture<Scalar>::gaussian(generated.first.template cast<Scalar>(),
                                                 generated.second.template cast<Scalar>());
      });
    }
    const Vec<Scalar> mean = f.vector<Scalar>("mean");
    const Mat<Scalar> cov = f.matrix<Scalar>("cov");
    return at_path(path, [&] { return GaussianMixture<Scalar>::gaussian(mean, cov); });
  }
  Fields f(config, path, {"type", "weights", "means", "covs", "diag_covs", "labels"});
  GaussianMixture<Scalar> mixture = gmm_of<Scalar>(f, config, path);
  if (f.has("labels")) {
    const json& labels = f.raw("labels");
    require(labels.is_array(), f.at("labels"), labels.dump(), "must be an array of class labels");
    std::vector<int> values;
    for (size_t k = 0; k < labels.size(); ++k) {
      const std::string at = f.at("labels") + "[" + std::to_string(k) + "]";
      require(labels[k].is_number_integer() && labels[k].get<long long>() >= 0 &&
                  labels[k].get<long long>() <= 1000000,
              at, labels[k].dump(), "must be an integer class label from 0 to 1000000");
      values.push_back(labels[k].get<int>());
    }
    at_path(path, [&] {
      mixture.set_labels(values);
      return 0;
    });
  }
  return mixture;
}

GeneratedGaussianSpec generated_gaussian_spec(const json& generated, const std::string& path) {
  require(generated.is_object(), path, generated.dump(),
          "must be an object: {\"spectrum\": \"power-law\" or \"low-rank-plus-diagonal\", "
          "\"dim\": ..., \"largest\": ..., \"exponent\": ..., \"mean_std\": ..., \"seed\": "
          "...}");
  Fields f(generated, path,
           {"spectrum", "dim", "largest", "exponent", "mean_std", "seed", "rank", "diagonal_min",
            "diagonal_max"});
  GeneratedGaussianSpec spec;
  spec.spectrum = f.text("spectrum", "power-law", {"power-law", "low-rank-plus-diagonal"});
  const bool low_rank = spec.spectrum == "low-rank-plus-diagonal";
  spec.dim = f.integer("dim");
  // LAPACK's 32-bit indices bound the order; memory is checked by the run's plan.
  require(spec.dim >= 1 && spec.dim <= lapack_max_dim, f.at("dim"), spec.dim,
          "must be from 1 to " + std::to_string(lapack_max_dim));
  for (const char* field : {"rank", "diagonal_min", "diagonal_max"})
    if (!low_rank && f.has(field))
      throw InputError(
          f.at(field), f.raw(field).dump(),
          "belongs to the spectrum \"low-rank-plus-diagonal\", not \"" + spec.spectrum + "\"");
  spec.rank = spec.dim;
  if (low_rank) {
    spec.rank = f.integer("rank");
    require(spec.rank >= 1 && spec.rank <= spec.dim, f.at("rank"), spec.rank,
            "must be from 1 to dim (" + std::to_string(spec.dim) + ")");
  }
  spec.largest = to_double(f.number<double>("largest", 1.0));
  require(spec.largest >= 1e-100 && spec.largest <= 1e100, f.at("largest"), spec.largest,
          "must be a positive eigenvalue from 1e-100 to 1e100");
  spec.exponent = to_double(f.number<double>("exponent", 1.0));
  require(std::isfinite(spec.exponent) && spec.exponent >= 0 && spec.exponent <= 20,
          f.at("exponent"), spec.exponent, "must be from 0 to 20 (l_k = largest * k^-exponent)");
  const double smallest = spec.largest * std::pow(static_cast<double>(spec.rank), -spec.exponent);
  require(smallest >= 1e-12 * spec.largest, f.at("exponent"), spec.exponent,
          "makes the smallest eigenvalue " + to_text(smallest) + ", below 1e-12 of the largest: " +
              (low_rank ? std::string("the low-rank part would not be numerically of that rank")
                        : std::string("the covariance would not be numerically positive definite "
                                      "in double")));
  if (low_rank) {
    spec.diagonal_min = to_double(f.number<double>("diagonal_min", 1.0));
    require(spec.diagonal_min >= 1e-100 && spec.diagonal_min <= 1e100, f.at("diagonal_min"),
            spec.diagonal_min, "must be from 1e-100 to 1e100");
    spec.diagonal_max = to_double(f.number<double>("diagonal_max", spec.diagonal_min));
    require(spec.diagonal_max >= spec.diagonal_min && spec.diagonal_max <= 1e100,
            f.at("diagonal_max"), spec.diagonal_max,
            "must be from diagonal_min (" + to_text(spec.diagonal_min) + ") to 1e100");
    require(spec.diagonal_min >= 1e-12 * (spec.largest + spec.diagonal_max), f.at("diagonal_min"),
            spec.diagonal_min,
            "is below 1e-12 of the largest eigenvalue (" +
                to_text(spec.largest + spec.diagonal_max) +
                "): the covariance would not be numerically positive definite in double");
  }
  spec.mean_std = to_double(f.number<double>("mean_std", 0.0));
  require(spec.mean_std >= 0 && spec.mean_std <= 1e100, f.at("mean_std"), spec.mean_std,
          "must be from 0 to 1e100");
  const double seed = f.has("seed") ? to_double(f.number<double>("seed")) : 0.0;
  require(seed >= 0 && seed == std::floor(seed) && seed < 9e15, f.at("seed"), seed,
          "must be a non-negative integer");
  spec.seed = static_cast<std::uint64_t>(seed);
  return spec;
}

Vec<double> GeneratedGaussianSpec::eigenvalues() const {
  Vec<double> l(rank);
  for (int k = 0; k < rank; ++k) l(k) = largest * std::pow(static_cast<double>(k + 1), -exponent);
  return l;
}

std::pair<Vec<double>, Mat<double>> generate_gaussian(const GeneratedGaussianSpec& spec) {
  Rng rng(spec.seed);
  // Q: dim x rank with orthonormal columns (square for the power law).
  Mat<double> q = lapack_orthogonal_factor(rng.normal_matrix<double>(spec.dim, spec.rank));
  const Vec<double> mean = spec.mean_std * rng.normal_matrix<double>(spec.dim, 1).col(0);
  // S = (Q diag(sqrt l)) (Q diag(sqrt l))^T, exactly symmetric, plus D for the low-rank form.
  q = q * spec.eigenvalues().cwiseSqrt().asDiagonal();
  Mat<double> cov = lapack_gram(q);
  if (spec.spectrum == "low-rank-plus-diagonal") {
    // D_i log-uniform on [diagonal_min, diagonal_max] (exactly diagonal_min when they agree).
    const double ratio = spec.diagonal_max / spec.diagonal_min;
    for (int i = 0; i < spec.dim; ++i)
      cov(i, i) +=
          ratio == 1 ? spec.diagonal_min : spec.diagonal_min * std::pow(ratio, rng.uniform());
  }
  return {mean, cov};
}

int generated_target_dim(const json& config, const std::string& path) {
  if (!(config.is_object() && config.contains("generated") && config.contains("type") &&
        config["type"] == "gaussian"))
    return 0;
  return generated_spec_of(Fields(config, path, {"type", "mean", "cov", "generated"})).dim;
}

bool generated_target_low_rank(const json& config, const std::string& path) {
  if (generated_target_dim(config, path) == 0) return false;
  const GeneratedGaussianSpec spec =
      generated_spec_of(Fields(config, path, {"type", "mean", "cov", "generated"}));
  // c I only (a general D takes an eigendecomposition for the exact map), and well inside the
  // detection's thresholds: the rank's smallest eigenvalue 1e-6 of the largest (the sketch's pivot
  // threshold is 1e-10), the noise level 1e-6 of the largest eigenvalue.
  return spec.spectrum == "low-rank-plus-diagonal" && spec.dim >= low_rank_min_dim &&
         spec.rank <= spec.dim / 8 && spec.diagonal_min == spec.diagonal_max &&
         spec.eigenvalues().minCoeff() >= 1e-6 * spec.largest &&
         spec.diagonal_min >= 1e-6 * (spec.largest + spec.diagonal_max);
}

template std::unique_ptr<LinearSde<double>> make_sde<double>(const json&, int, const std::string&);
template std::unique_ptr<LinearSde<mp50>> make_sde<mp50>(const json&, int, const std::string&);
template GaussianMixture<double> make_target<double>(const json&, const std::string&);
template GaussianMixture<mp50> make_target<mp50>(const json&, const std::string&);
template std::unique_ptr<LinearSde<f128>> make_sde<f128>(const json&, int, const std::string&);
template GaussianMixture<f128> make_target<f128>(const json&, const std::string&);

}  // namespace pflow
