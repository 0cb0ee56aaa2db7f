// Core numerics: BlockMatrix structure, the matrix exponential, the Lyapunov solver, Gauss-
// Legendre quadrature, the DCT basis and the odeint wrapper, in double and mp50.
#include "helpers.hpp"
#include "pflow/core/block_matrix.hpp"
#include "pflow/core/linalg.hpp"
#include "pflow/core/odeint.hpp"
#include "pflow/sde/blurring.hpp"
#include "pflow/sde/kernel_numeric.hpp"

using namespace pflow;
using pflow::testing::max_diff;
using pflow::testing::tol;

TEMPLATE_TEST_CASE("BlockMatrix operations agree with dense algebra", "[core]", double, mp50) {
  using S = TestType;
  // groups = 3, block = 2, one block per group; index of (group i, component j) is j * 3 + i.
  std::vector<Mat<S>> blocks;
  for (int i = 0; i < 3; ++i) {
    Mat<S> b(2, 2);
    b << 2 + i, ratio<S>(1, 3), ratio<S>(1, 3), 1 + i;
    blocks.push_back(b);
  }
  const auto a = BlockMatrix<S>::per_group(blocks);
  Mat<S> shared_block(2, 2);
  shared_block << 1, 2, -1, ratio<S>(1, 2);
  const auto b = BlockMatrix<S>::shared(3, shared_block);
  const Mat<S> ad = a.to_dense(), bd = b.to_dense();
  REQUIRE(ad(0, 0) == S(2));
  REQUIRE(ad(3 + 1, 1) == ratio<S>(1, 3));  // group 1: (v_1, x_1) entry
  REQUIRE(ad(0, 1) == S(0));                // groups do not couple
  Mat<S> x(6, 4);
  for (int r = 0; r < 6; ++r)
    for (int c = 0; c < 4; ++c) x(r, c) = S(r + 1) / S(c + 2);
  CHECK(max_diff(a.apply(x), Mat<S>(ad * x)) <= tol<S>(1e-14, 1e-45));
  CHECK(max_diff((a * b).to_dense(), Mat<S>(ad * bd)) <= tol<S>(1e-14, 1e-45));
  CHECK(max_diff((a + b).to_dense(), Mat<S>(ad + bd)) <= tol<S>(1e-14, 1e-45));
  CHECK(max_diff(a.inverse().to_dense(), Mat<S>(ad.inverse())) <= tol<S>(1e-14, 1e-45));
  const Mat<S> l = a.cholesky().to_dense();
  CHECK(max_diff(Mat<S>(l * l.transpose()), ad) <= tol<S>(1e-14, 1e-45));
  using std::log;
  CHECK(to_double(S(abs(a.logdet_spd() - log(ad.determinant())))) <= tol<S>(1e-13, 1e-45));
  // Shared x shared stays shared; mixed layouts fall back to dense and still agree.
  CHECK((b * b).is_shared());
  const auto dense = BlockMatrix<S>::dense(bd);
  CHECK(max_diff((a * dense).to_dense(), Mat<S>(ad * bd)) <= tol<S>(1e-14, 1e-45));
}

TEMPLATE_TEST_CASE("expm matches closed forms of rotations and nilpotent matrices", "[core]",
                   double, mp50) {
  using S = TestType;
  using std::cos;
  using std::exp;
  using std::sin;
  // exp([[a, -w], [w, a]] t) = e^{at} Rot(wt), with a norm large enough to need squarings.
  const S a = ratio<S>(-3, 10), w = 7;
  Mat<S> m(2, 2);
  m << a, -w, w, a;
  Mat<S> expected(2, 2);
  expected << cos(w), -sin(w), sin(w), cos(w);
  expected *= exp(a);
  CHECK(max_diff(expm<S>(m), expected) <= tol<S>(1e-14, 1e-44));
  // Nilpotent: exp(N) = I + N + N^2/2.
  Mat<S> n = Mat<S>::Zero(3, 3);
  n(0, 1) = 5;
  n(1, 2) = -4;
  const Mat<S> series = Mat<S>::Identity(3, 3) + n + n * n / S(2);
  CHECK(max_diff(expm<S>(n), series) <= tol<S>(1e-13, 1e-44));
}

TEMPLATE_TEST_CASE("solve_lyapunov solves A X + X A^T + C = 0", "[core]", double, mp50) {
  using S = TestType;
  Mat<S> a(3, 3), c(3, 3);
  a << -2, 1, 0, -1, -3, ratio<S>(1, 2), 0, ratio<S>(-1, 2), -1;
  c << 2, ratio<S>(1, 5), 0, ratio<S>(1, 5), 1, ratio<S>(1, 10), 0, ratio<S>(1, 10), 3;
  const Mat<S> x = solve_lyapunov<S>(a, c);
  CHECK(max_diff(Mat<S>(a * x + x * a.transpose() + c), Mat<S>::Zero(3, 3)) <=
        tol<S>(1e-14, 1e-45));
  // Scalar case: X = -c / (2a).
  CHECK(max_diff(solve_lyapunov<S>(Mat<S>::Constant(1, 1, S(-4)), Mat<S>::Constant(1, 1, S(2))),
                 Mat<S>::Constant(1, 1, ratio<S>(1, 4))) <= tol<S>(1e-16, 1e-48));
  // F = 0 has no equilibrium: a clear error, not a NaN.
  CHECK_THROWS_AS(solve_lyapunov<S>(Mat<S>::Zero(1, 1), Mat<S>::Ones(1, 1)), NumericalError);
}

TEMPLATE_TEST_CASE("Gauss-Legendre integrates polynomials exactly", "[core]", double, mp50) {
  using S = TestType;
  const auto [nodes, weights] = gauss_legendre<S>(10);
  // Exact up to degree 19: int_{-1}^{1} x^18 = 2/19, int x^19 = 0.
  S even = 0, odd = 0, total = 0;
  for (size_t i = 0; i < nodes.size(); ++i) {
    even += weights[i] * pow(nodes[i], 18);
    odd += weights[i] * pow(nodes[i], 19);
    total += weights[i];
  }
  CHECK(to_double(S(abs(even - ratio<S>(2, 19)))) <= tol<S>(1e-15, 1e-47));
  CHECK(to_double(S(abs(odd))) <= tol<S>(1e-15, 1e-47));
  CHECK(to_double(S(abs(total - 2))) <= tol<S>(1e-14, 1e-47));
}

TEMPLATE_TEST_CASE("The DCT matrix is orthonormal and diagonalises the Laplacian", "[core]", double,
                   mp50) {
  using S = TestType;
  const Mat<S> c = dct_matrix<S>(6);
  CHECK(max_diff(Mat<S>(c * c.transpose()), Mat<S>::Identity(6, 6)) <= tol<S>(1e-14, 1e-48));
  // Neumann second-difference Laplacian: eigenvalues 4 sin^2(pi k / (2n)) in the DCT-II basis.
  Mat<S> lap = Mat<S>::Zero(6, 6);
  for (int i = 0; i < 6; ++i) {
    lap(i, i) = (i == 0 || i == 5) ? 1 : 2;
    if (i > 0) lap(i, i - 1) = -1;
    if (i < 5) lap(i, i + 1) = -1;
  }
  const Mat<S> d = c * lap * c.transpose();
  for (int k = 0; k < 6; ++k) {
    using std::sin;
    const S s = sin(pi<S>() * k / 12);
    CHECK(to_double(S(abs(d(k, k) - 4 * s * s))) <= tol<S>(1e-14, 1e-47));
  }
  CHECK(max_diff(Mat<S>(d - Mat<S>(d.diagonal().asDiagonal())), Mat<S>::Zero(6, 6)) <=
        tol<S>(1e-14, 1e-47));
}

TEMPLATE_TEST_CASE("Bulirsch-Stoer reaches its tolerance forwards and backwards", "[core]", double,
                   mp50) {
  using S = TestType;
  using std::exp;
  // x' = -(1 + t) x has x(t) = x(t0) exp(-(t - t0) - (t^2 - t0^2)/2).
  auto rhs = [](const Vec<S>& x, const S& t) { return Vec<S>(-(1 + t) * x); };
  const S tol_ode = S(tol<S>(1e-14, 1e-35));
  for (const auto& [t0, t1] : {std::pair<S, S>{S(0), ratio<S>(19, 20)}, {S(1), ratio<S>(1, 20)}}) {
    Vec<S> x = Vec<S>::Constant(1, S(2));
    const long evals = integrate_bulirsch_stoer<S>(rhs, x, t0, t1, tol_ode);
    const S exact = 2 * exp(-(t1 - t0) - (t1 * t1 - t0 * t0) / 2);
    CHECK(to_double(S(abs(x(0) - exact))) <= tol<S>(1e-13, 1e-33));
    // Both directions take a similar, small number of evaluations (a Boost 1.74 defect made
    // backward solves take ~100x more; see odeint.hpp).
    CHECK(evals < tol<S>(600, 8000));
  }
}
