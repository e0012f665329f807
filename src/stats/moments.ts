/** Summary statistics of a tensor's values. NaN/Inf are counted and left out of the moments. */
export interface Moments {
  count: number;
  mean: number;
  std: number;
  min: number;
  max: number;
  zeroFraction: number;
  nonFinite: number;
  /** Excess kurtosis (0 for a Gaussian, -1.2 for a uniform); NaN when undefined. */
  kurtosis: number;
  skewness: number;
}

/** Two passes over the values: exact central moments even when the mean is far from zero. */
export function moments(values: ArrayLike<number>): Moments {
  const n = values.length;
  let sum = 0, min = Infinity, max = -Infinity, zeros = 0, nonFinite = 0;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) { nonFinite++; continue; }
    sum += v;
    if (v < min) min = v;
    if (v > max) max = v;
    if (v === 0) zeros++;
  }
  const finite = n - nonFinite;
  const mean = finite ? sum / finite : NaN;
  let m2 = 0, m3 = 0, m4 = 0;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) continue;
    const d = v - mean;
    const d2 = d * d;
    m2 += d2;
    m3 += d2 * d;
    m4 += d2 * d2;
  }
  const variance = finite ? m2 / finite : NaN;
  return {
    count: n,
    mean,
    std: Math.sqrt(variance),
    min: finite ? min : NaN,
    max: finite ? max : NaN,
    zeroFraction: n ? zeros / n : NaN,
    nonFinite,
    kurtosis: variance > 0 ? (m4 / finite) / (variance * variance) - 3 : NaN,
    skewness: variance > 0 ? (m3 / finite) / variance ** 1.5 : NaN,
  };
}

/** Moments of a tensor whose elements all equal `value`, without materialising it. */
export function constantMoments(value: number, count: number): Moments {
  const finite = Number.isFinite(value);
  return {
    count, mean: finite ? value : NaN, std: finite ? 0 : NaN, min: finite ? value : NaN, max: finite ? value : NaN,
    zeroFraction: value === 0 ? 1 : 0, nonFinite: finite ? 0 : count, kurtosis: NaN, skewness: NaN,
  };
}

/**
 * Merges per-batch (count, mean, M2) summaries with Chan et al.'s parallel update, so streaming
 * over batches gives the same variance as one pass over all data.
 */
export class RunningMoments {
  count = 0;
  mean = 0;
  m2 = 0;

  add(count: number, mean: number, m2: number): void {
    if (count === 0) return;
    const total = this.count + count;
    const delta = mean - this.mean;
    this.mean += (delta * count) / total;
    this.m2 += m2 + (delta * delta * this.count * count) / total;
    this.count = total;
  }

  get variance(): number {
    return this.count ? this.m2 / this.count : NaN;
  }
}
