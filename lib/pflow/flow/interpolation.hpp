// Interpolation between two latents (docs/NOTES.md sec. 13): linear, and spherical (slerp), the
// usual choice for latents that are close to N(0, I) and so concentrated near a sphere, where a
// straight line passes through atypically small norms.
//
//   lerp(a, b, u)  = (1 - u) a + u b
//   slerp(a, b, u) = sin((1 - u) theta) / sin(theta) a + sin(u theta) / sin(theta) b,
//                    cos(theta) = a.b / (|a| |b|)
//
// Both return a at u = 0 and b at u = 1 exactly: the weights are 1 and 0 there in floating point.
#pragma once

#include <cmath>
#include <string>

#include "pflow/core/errors.hpp"
#include "pflow/core/linalg.hpp"

namespace pflow {

// The angle between a and b (columns), in [0, pi].
template <class Scalar>
Scalar angle_between(const Vec<Scalar>& a, const Vec<Scalar>& b) {
  using std::acos;
  using std::max;
  using std::min;
  const Scalar na = a.norm(), nb = b.norm();
  require(na > 0 && nb > 0, "interpolation", "a zero latent", "has no direction to slerp from");
  const Scalar c = a.dot(b) / (na * nb);
  return acos(max(Scalar(-1), min(Scalar(1), c)));
}

// The point at u in [0, 1] on the path from a to b: "linear" or "slerp".
template <class Scalar>
Vec<Scalar> interpolate(const Vec<Scalar>& a, const Vec<Scalar>& b, const Scalar& u,
                        const std::string& method) {
  using std::sin;
  if (method == "linear") return (1 - u) * a + u * b;
  const Scalar theta = angle_between(a, b);
  // Parallel latents: the great circle degenerates to the line between them. Antipodal ones
  // lie on every great circle through both.
  if (theta < Scalar(1e-12)) return (1 - u) * a + u * b;
  require(theta < pi<Scalar>() - Scalar(1e-9), "interpolation.method", "slerp",
          "the two latents point in opposite directions: no unique great circle joins them");
  const Scalar s = sin(theta);
  return (sin((1 - u) * theta) / s) * a + (sin(u * theta) / s) * b;
}

// count points u_k = k / (count - 1) of the path from a to b, as the columns of a D x count
// matrix, with their parameters.
template <class Scalar>
Mat<Scalar> interpolation_path(const Vec<Scalar>& a, const Vec<Scalar>& b, int count,
                               const std::string& method, Vec<Scalar>* parameters = nullptr) {
  Mat<Scalar> path(a.size(), count);
  Vec<Scalar> u(count);
  for (int k = 0; k < count; ++k) {
    u(k) = Scalar(k) / Scalar(count - 1);
    path.col(k) = interpolate<Scalar>(a, b, u(k), method);
  }
  if (parameters) *parameters = u;
  return path;
}

}  // namespace pflow
