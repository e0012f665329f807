/**
 * Small dense linear algebra for the input-data and recurrent checks: streaming covariance,
 * eigenvalues of symmetric matrices (cyclic Jacobi) and the spectral radius of a square matrix
 * (power iteration with Gelfand's formula). Matrices are row-major Float64Arrays of n*n values.
 *
 * Why not a library: ml-matrix (the best-kept npm option) needed 5.9 s for the eigenvalues of a
 * 512x512 nonsymmetric matrix and 1.5 s for a symmetric one on this machine; the checks here need
 * only eigenvalues (no vectors) of covariance matrices (at most MAX_COVARIANCE_FEATURES wide) and
 * one number per recurrent matrix, which these ~100 lines give in milliseconds. They are tested
 * against numpy (test/fixtures/lessons/linalg_oracle.json).
 */

/**
 * Streaming mean and covariance of d-dimensional rows. Sums are taken around the first row
 * (a shift), so features with a large mean (raw 0-255 pixels) lose no precision.
 */
export class CovarianceAccumulator {
  count = 0;
  private shift: Float64Array | undefined;
  private readonly s1: Float64Array;
  private readonly s2: Float64Array;

  constructor(readonly d: number) {
    this.s1 = new Float64Array(d);
    this.s2 = new Float64Array(d * d);
  }

  /** Adds one row (`row[offset + i * stride]` for i < d). Rows holding NaN/Inf are skipped. */
  add(row: ArrayLike<number>, offset = 0, stride = 1): boolean {
    const d = this.d;
    const x = new Float64Array(d);
    for (let i = 0; i < d; i++) {
      const v = Number(row[offset + i * stride]);
      if (v - v !== 0) return false;
      x[i] = v;
    }
    if (!this.shift) this.shift = Float64Array.from(x);
    for (let i = 0; i < d; i++) x[i] -= this.shift[i];
    for (let i = 0; i < d; i++) {
      const xi = x[i];
      this.s1[i] += xi;
      const base = i * d;
      for (let j = i; j < d; j++) this.s2[base + j] += xi * x[j];
    }
    this.count++;
    return true;
  }

  mean(): Float64Array {
    const m = new Float64Array(this.d);
    if (!this.count || !this.shift) return m.fill(NaN);
    for (let i = 0; i < this.d; i++) m[i] = this.shift[i] + this.s1[i] / this.count;
    return m;
  }

  /** Population covariance (divided by the count, as in the seed's `X.T @ X / N`). */
  covariance(): Float64Array {
    const d = this.d;
    const c = new Float64Array(d * d);
    const n = this.count;
    if (!n) return c.fill(NaN);
    for (let i = 0; i < d; i++) {
      for (let j = i; j < d; j++) {
        const v = this.s2[i * d + j] / n - (this.s1[i] / n) * (this.s1[j] / n);
        c[i * d + j] = v;
        c[j * d + i] = v;
      }
    }
    return c;
  }
}

/** Correlation matrix from a covariance matrix; features with zero variance get 0 off the diagonal. */
export function correlation(cov: Float64Array, d: number): Float64Array {
  const r = new Float64Array(d * d);
  const sd = Float64Array.from({ length: d }, (_, i) => Math.sqrt(Math.max(cov[i * d + i], 0)));
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) {
      r[i * d + j] = i === j ? 1 : sd[i] > 0 && sd[j] > 0 ? cov[i * d + j] / (sd[i] * sd[j]) : 0;
    }
  }
  return r;
}

/**
 * Eigenvalues of a symmetric matrix, largest first, by cyclic Jacobi rotations (Golub & Van Loan
 * 8.5): accurate to a few ulps of the largest eigenvalue, O(d^3) per sweep, typically 6-10 sweeps.
 */
export function symmetricEigenvalues(matrix: Float64Array, d: number): Float64Array {
  const a = Float64Array.from(matrix);
  const offNorm = (): number => {
    let s = 0;
    for (let i = 0; i < d; i++) for (let j = i + 1; j < d; j++) s += a[i * d + j] ** 2;
    return Math.sqrt(2 * s);
  };
  let total = 0;
  for (let i = 0; i < d * d; i++) total += a[i] * a[i];
  const tolerance = 1e-15 * Math.sqrt(total);
  for (let sweep = 0; sweep < 60 && offNorm() > tolerance; sweep++) {
    for (let p = 0; p < d - 1; p++) {
      for (let q = p + 1; q < d; q++) {
        const apq = a[p * d + q];
        if (apq === 0) continue;
        const app = a[p * d + p];
        const aqq = a[q * d + q];
        // Rotation angle that zeroes a[p][q] (the smaller of the two solutions, for stability).
        const theta = (aqq - app) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < d; k++) {
          const akp = a[k * d + p];
          const akq = a[k * d + q];
          a[k * d + p] = c * akp - s * akq;
          a[k * d + q] = s * akp + c * akq;
        }
        for (let k = 0; k < d; k++) {
          const apk = a[p * d + k];
          const aqk = a[q * d + k];
          a[p * d + k] = c * apk - s * aqk;
          a[q * d + k] = s * apk + c * aqk;
        }
      }
    }
  }
  return Float64Array.from({ length: d }, (_, i) => a[i * d + i]).sort((x, y) => y - x);
}

/**
 * Spectral radius (largest |eigenvalue|) of a square n x n matrix, by power iteration with
 * Gelfand's formula rho = lim ||A^k v||^(1/k): the average log growth per step over a window
 * after a burn-in. Unlike the plain Rayleigh quotient this converges when the dominant
 * eigenvalues are a complex pair (the usual case for random recurrent matrices), where the
 * vector rotates but its growth rate does not. Relative error is about 1e-3 for n <= 1024.
 */
export function spectralRadius(matrix: ArrayLike<number>, n: number, options: { burnIn?: number; window?: number; seed?: number } = {}): number {
  const burnIn = options.burnIn ?? 200;
  const window = options.window ?? 800;
  const a = matrix instanceof Float64Array ? matrix : Float64Array.from(matrix as ArrayLike<number>);
  for (let i = 0; i < n * n; i++) if (a[i] - a[i] !== 0) return NaN;
  let v = new Float64Array(n);
  // A fixed pseudo-random start (so results are reproducible) with components in every direction.
  let state = (options.seed ?? 12345) >>> 0;
  for (let i = 0; i < n; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    v[i] = state / 4294967296 - 0.5;
  }
  normalize(v);
  let w = new Float64Array(n);
  let logSum = 0;
  for (let k = 0; k < burnIn + window; k++) {
    for (let i = 0; i < n; i++) {
      let s = 0;
      const base = i * n;
      for (let j = 0; j < n; j++) s += a[base + j] * v[j];
      w[i] = s;
    }
    const norm = normalize(w);
    if (norm === 0) return 0; // nilpotent along this start vector: A^k v = 0
    if (k >= burnIn) logSum += Math.log(norm);
    [v, w] = [w, v];
  }
  return Math.exp(logSum / window);
}

function normalize(v: Float64Array): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  const norm = Math.sqrt(s);
  if (norm > 0) for (let i = 0; i < v.length; i++) v[i] /= norm;
  return norm;
}

/** Ratio of the largest to the smallest eigenvalue (Infinity when the smallest is <= 0). */
export function conditionNumber(eigenvaluesDescending: ArrayLike<number>): number {
  const n = eigenvaluesDescending.length;
  if (!n) return NaN;
  const max = eigenvaluesDescending[0];
  const min = eigenvaluesDescending[n - 1];
  return min > max * 1e-15 && min > 0 ? max / min : Infinity;
}

/** Fractions of the total variance carried by each principal component (eigenvalues, largest first). */
export function explainedVarianceRatios(eigenvaluesDescending: ArrayLike<number>): number[] {
  let total = 0;
  for (let i = 0; i < eigenvaluesDescending.length; i++) total += Math.max(eigenvaluesDescending[i], 0);
  return Array.from(eigenvaluesDescending, (e) => (total > 0 ? Math.max(e, 0) / total : NaN));
}
