// Sample-only data sets (README "Learned denoisers", target type "dataset"): two-moons,
// checkerboard and swiss-roll in 2-D, scaled and blurred by Gaussian noise. They have no density
// and no score: runs on them use a learned model, and kind "sample" compares its samples with
// fresh draws. The definitions are those of scripts/train_denoiser.py (dataset_points), so a
// model trained there is compared with the distribution it learned; the random streams differ.
//
//   x = scale * (base + noise * z),  z ~ N(0, I_2), base one of
//   two-moons     U ~ U(0,1), a fair coin: upper (cos pi U - 1/2, sin pi U - 1/4),
//                 lower (1/2 - cos pi U, 1/4 - sin pi U)
//   checkerboard  uniform on the 8 dark squares of a 4 x 4 board on [-2, 2]^2: square
//                 k ~ U{0..7}, row = k / 2, column = 2 (k mod 2) + (row mod 2)
//   swiss-roll    a = 3 pi / 2 (1 + 2 U): (a cos a, a sin a) / 5
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pflow/core/json_fields.hpp"
#include "pflow/target/random.hpp"

namespace pflow {

inline const std::vector<std::string>& dataset_names() {
  static const std::vector<std::string> names{"two-moons", "checkerboard", "swiss-roll"};
  return names;
}

// Whether a target block is a sample-only data set.
inline bool is_dataset_target(const nlohmann::json& target) {
  return target.is_object() && target.contains("type") && target["type"] == "dataset";
}

struct Dataset {
  std::string name;
  double noise = 0.05, scale = 1.0;

  static constexpr int dim = 2;

  // The target block {"type": "dataset", "name", "noise" (default 0.05), "scale" (default 1)};
  // errors name the field under `path`.
  static Dataset parse(const nlohmann::json& block, const std::string& path) {
    const Fields f(block, path, {"type", "name", "noise", "scale"});
    Dataset d;
    d.name = f.text("name", std::nullopt, dataset_names());
    d.noise = to_double(f.number<double>("noise", 0.05));
    d.scale = to_double(f.number<double>("scale", 1.0));
    // Bounded so that squared distances between samples stay finite.
    require(std::isfinite(d.noise) && d.noise >= 0 && d.noise <= 1e6, f.at("noise"), d.noise,
            "must be a finite number in [0, 1e6]");
    require(std::isfinite(d.scale) && d.scale > 0 && d.scale <= 1e6, f.at("scale"), d.scale,
            "must be a finite number in (0, 1e6]");
    return d;
  }

  // n points (2 x n).
  template <class Scalar>
  Mat<Scalar> sample(int n, Rng& rng) const {
    const double pi = 3.14159265358979323846;
    Mat<Scalar> out(dim, n);
    for (int j = 0; j < n; ++j) {
      const double u = rng.uniform();
      double x = 0, y = 0;
      if (name == "two-moons") {
        const bool upper = rng.uniform() < 0.5;
        const double c = std::cos(pi * u), s = std::sin(pi * u);
        x = upper ? c - 0.5 : 0.5 - c;
        y = upper ? s - 0.25 : 0.25 - s;
      } else if (name == "checkerboard") {
        const int square = std::min(7, static_cast<int>(8 * rng.uniform()));
        const int row = square / 2, column = 2 * (square % 2) + row % 2;
        x = column - 2 + u;
        y = row - 2 + rng.uniform();
      } else {  // swiss-roll
        const double a = 1.5 * pi * (1 + 2 * u);
        x = a * std::cos(a) / 5;
        y = a * std::sin(a) / 5;
      }
      out(0, j) = from_double<Scalar>(scale * (x + noise * rng.normal()));
      out(1, j) = from_double<Scalar>(scale * (y + noise * rng.normal()));
    }
    return out;
  }
};

}  // namespace pflow
